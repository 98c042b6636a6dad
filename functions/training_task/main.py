"""Training container entry point: run one training job, exit 0 if it succeeded.

The ECS task gets its job from the environment (POLICYHUB_JOB_ID, POLICYHUB_TENANT_ID,
POLICYHUB_AGENT_TYPE); the table, buckets and region come from the task definition like the
Lambdas' settings. The local stack runs the same `policyhub.api.container.run_training_job`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

from policyhub.api import container
from policyhub.domain.training import JobStatus

logger = logging.getLogger("policyhub.training_task")
REQUIRED = ("POLICYHUB_JOB_ID", "POLICYHUB_TENANT_ID", "POLICYHUB_AGENT_TYPE")


def main(env: Mapping[str, str] = os.environ) -> int:
    missing = [k for k in REQUIRED if not env.get(k)]
    if missing:
        logger.error("missing environment: %s", ", ".join(missing))
        return 2
    job = container.run_training_job(
        env["POLICYHUB_TENANT_ID"], env["POLICYHUB_AGENT_TYPE"], env["POLICYHUB_JOB_ID"]
    )
    logger.info(
        "training job %s %s (candidate %s, error %s)",
        job.job_id,
        job.status.value,
        job.candidate_version,
        job.error,
    )
    return 0 if job.status is JobStatus.SUCCEEDED else 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    sys.exit(main())
