"""`python -m runtime.aws.credentials`: is there an AWS identity to deploy
with? `make deploy` runs it first, so a machine without credentials gets one
clear line instead of a SAM build and a stack trace minutes later.

Prints the account and the caller's ARN and exits 0; else prints what is
missing and how to supply it, and exits 1. One STS call (GetCallerIdentity
needs no permission).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

__all__ = ["CredentialsError", "caller_identity", "main"]

HOW = (
    "set AWS_PROFILE (a profile from `aws configure` or `aws configure sso`), or "
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and AWS_REGION"
)


class CredentialsError(Exception):
    """No usable AWS identity; the message says what to set."""


def caller_identity(session: Any = None) -> dict[str, str]:
    """The caller's account, ARN and region, or CredentialsError."""
    session = session if session is not None else boto3.Session()
    region = session.region_name or os.environ.get("AWS_REGION")  # boto3 reads only the default
    if not region:
        raise CredentialsError(f"no AWS region: {HOW}")
    if session.get_credentials() is None:
        raise CredentialsError(f"no AWS credentials: {HOW}")
    try:
        answer = session.client("sts", region_name=region).get_caller_identity()
    except NoCredentialsError:
        raise CredentialsError(f"no AWS credentials: {HOW}") from None
    except NoRegionError:
        raise CredentialsError(f"no AWS region: {HOW}") from None
    except ClientError as e:
        error = e.response.get("Error", {})
        raise CredentialsError(
            f"AWS refused these credentials ({error.get('Code')}: {error.get('Message')}): {HOW}"
        ) from None
    except BotoCoreError as e:
        raise CredentialsError(f"cannot check the AWS credentials: {e}") from None
    return {"account": answer["Account"], "arn": answer["Arn"], "region": region}


def main() -> int:
    try:
        who = caller_identity()
    except CredentialsError as e:
        print(f"deploy: {e}", file=sys.stderr)
        return 1
    print(f"deploying as {who['arn']} (account {who['account']}, region {who['region']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
