"""The AWS deployment: the CDK app (app.py, the stack of template.yaml) and
the Lambda package build (package.py)."""
