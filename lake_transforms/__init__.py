"""Transforms of custom datasets, named in the data lake's registry as ``lake_transforms.<module>:<function>``
(vendored with the data lake app, and given to the stage B Glue job). A stage A transform takes the object's body and
its ``Source`` and yields ``PreStaged`` files; a stage B transform takes each typed ``pyarrow.RecordBatch`` and a
context (table, partition, source) and returns the batch (or a table) to write."""
