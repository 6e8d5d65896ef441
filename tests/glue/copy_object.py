"""A test Glue job script: copies ``--source_key`` to ``--target_key`` in ``--bucket``; fails on a missing key."""

import sys

import boto3


def main(argv: list[str]) -> None:
    args = dict(zip(argv[1::2], argv[2::2], strict=False))
    s3 = boto3.client("s3")
    body = s3.get_object(Bucket=args["--bucket"], Key=args["--source_key"])["Body"].read()
    s3.put_object(Bucket=args["--bucket"], Key=args["--target_key"], Body=body + f" by {args['--JOB_NAME']}".encode())


if __name__ == "__main__":
    main(sys.argv)
