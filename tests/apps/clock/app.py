"""A test-only app: one function on a rate schedule, to show the local cloud fires ``@app.schedule``."""

from chalice import Chalice

app = Chalice(app_name="amci-test-clock", configure_logs=False)


@app.schedule("rate(1 minute)")
def every_minute(event):
    return {"time": event.time}
