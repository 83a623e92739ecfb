"""`aws-local`: the Lambda handlers of `runtime/aws/` served on loopback, fed
the events AWS would send them.

A command for the developer's machine, not Lambda code: it lives beside the
AWS shell rather than in it, so the Lambda package (infra/package.py) leaves
it out and the handlers cannot come to depend on it.

- `gateway.py`: API Gateway's HTTP API (payload 2.0 events), WebSocket API
  (`$connect`/`$default`/`$disconnect`) and Management API (`/@connections`)
  on one port; `websocket.py` the connections; `events.py` the event shapes.
- `streams.py`: Lambda's event source mapping on a DynamoDB stream.
- `jobs.py`: SQS and EventBridge Scheduler for scheduled functions and crons
  (moto's server keeps the queue and schedules; an SQS event source poller
  and a schedule firer invoke the scheduler Lambda); `schedule_expressions.py`
  evaluates at/rate/cron expressions.
- `functions.py`: handlers, their context objects, the worker threads.
- `dynamodb_local.py`: starting DynamoDB Local; `s3.py`: the files' S3 bucket
  (moto's S3 server, or the one given); `moto_server.py`: the one way both
  start moto's server; `main.py`: the wiring.
"""

from .functions import LambdaContext, LambdaFunction, lazy_handler
from .gateway import GatewayConfig, LocalGateway
from .limits import GatewayLimits
from .server import ServerThread
from .streams import StreamPoller

__all__ = [
    "GatewayConfig",
    "GatewayLimits",
    "LambdaContext",
    "LambdaFunction",
    "LocalGateway",
    "ServerThread",
    "StreamPoller",
    "lazy_handler",
]
