"""Close the gaps between moto and AWS that our code and tests would otherwise trip over.

DynamoDB isolation (`make_dynamodb_writes_atomic`):

moto checks a write's condition and then applies it without a lock, and restores a failed
TransactWriteItems from a copy of the whole table — so two threads can both pass the same
condition, or one can undo the other's write. DynamoDB serialises conflicting writes. The
embedded AWS (and mock_aws in the tests) therefore runs DynamoDB writes under one lock, so
races in our tests exercise our code, not the emulator's gaps
(docs/decisions/006-embedded-aws-fidelity.md).

Step Functions' `states:startExecution` integration (`make_sfn_start_execution_take_asl_names`):
an ASL task passes `StateMachineArn`, `Name`, `Input` as AWS documents them; moto's interpreter
hands them to boto3 as they are, and boto3 knows only `stateMachineArn`, `name`, `input`, so
the task fails with States.Runtime. Only tests that execute the rollout state machine need it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

_WRITES = ("transact_write_items", "put_item", "update_item", "delete_item")
_lock = threading.RLock()
_applied = False


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return method(*args, **kwargs)

    return wrapper


def make_dynamodb_writes_atomic() -> None:
    global _applied
    if _applied:
        return
    for name in _WRITES:
        setattr(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name)))
    _applied = True


def make_sfn_start_execution_take_asl_names() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_sfn as sfn_task,
    )

    task = sfn_task.StateTaskServiceSfn
    if getattr(task, "_policyhub_asl_names", False):
        return
    normalise = task._normalise_parameters

    def with_api_names(self: Any, parameters: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        normalise(self, parameters, *args, **kwargs)
        for key in [k for k in parameters if k[:1].isupper()]:
            parameters[key[0].lower() + key[1:]] = parameters.pop(key)

    task._normalise_parameters = with_api_names  # type: ignore[method-assign]
    task._policyhub_asl_names = True  # type: ignore[attr-defined]
