from django.db import models


class BodyRun(models.Model):
    """One row each time a test task's body starts: lets tests count executions across processes."""

    job_id = models.BigIntegerField()
    attempt = models.PositiveIntegerField()
    pid = models.PositiveIntegerField()
    at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"job {self.job_id} attempt {self.attempt} in pid {self.pid}"
