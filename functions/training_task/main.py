"""Training container entry point: run one training job, exit 0 if it succeeded.

The ECS task gets its job from the environment (POLICYHUB_JOB_ID, POLICYHUB_TENANT_ID,
POLICYHUB_AGENT_TYPE, read by `policyhub.settings.task_job`); the table, buckets and region come
from the task definition like the Lambdas' settings. The local stack runs the same
`policyhub.api.container.run_training_job`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

from policyhub.api import container
from policyhub.domain.training import JobStatus
from policyhub.settings import ConfigurationError, settings, task_job

logger = logging.getLogger("policyhub.training_task")


def main(env: Mapping[str, str] | None = None) -> int:
    try:
        job_ref = task_job(env)
        settings()  # a misconfigured task stops here, naming the variables
    except ConfigurationError as err:
        logger.error("%s", err)
        return 2
    job = container.run_training_job(job_ref.tenant_id, job_ref.agent_type, job_ref.job_id)
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
