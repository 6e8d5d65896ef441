"""Stage A transforms of custom datasets, named in the data lake's registry as ``lake_transforms.<module>:<function>``
(vendored with the data lake app). Each takes the object's body and its ``Source`` and yields ``PreStaged`` files."""
