"""Amazon Marketing Cloud's reporting API (workflows, workflow executions, results), on the Ads hosts."""
