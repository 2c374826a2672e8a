"""Run status, lifecycle stage and view type, as strings on the wire (MLflow's enum names)."""

from __future__ import annotations

from modelyard.exceptions import ModelyardException


class RunStatus:
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    ALL = (RUNNING, SCHEDULED, FINISHED, FAILED, KILLED)
    TERMINATED = (FINISHED, FAILED, KILLED)

    @classmethod
    def validate(cls, status: str) -> str:
        if status not in cls.ALL:
            raise ModelyardException.invalid_parameter(
                f"Invalid run status '{status}'. Expected one of {list(cls.ALL)}."
            )
        return status

    @classmethod
    def is_terminated(cls, status: str) -> bool:
        return status in cls.TERMINATED


class LifecycleStage:
    ACTIVE = "active"
    DELETED = "deleted"


class ViewType:
    """MLflow's ViewType; the wire form is the name (`ACTIVE_ONLY`), the client API also takes ints."""

    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3
    _BY_NAME = {"ACTIVE_ONLY": 1, "DELETED_ONLY": 2, "ALL": 3}
    _BY_VALUE = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}

    @classmethod
    def parse(cls, value: int | str | None) -> int:
        if value is None or value == "":
            return cls.ACTIVE_ONLY
        if isinstance(value, int) and value in cls._BY_VALUE:
            return value
        if isinstance(value, str):
            if value.upper() in cls._BY_NAME:
                return cls._BY_NAME[value.upper()]
            if value.isdigit() and int(value) in cls._BY_VALUE:
                return int(value)
        raise ModelyardException.invalid_parameter(
            f"Invalid view type '{value}'. Expected one of ACTIVE_ONLY, DELETED_ONLY, ALL."
        )

    @classmethod
    def to_string(cls, value: int) -> str:
        return cls._BY_VALUE[value]

    @classmethod
    def stages(cls, value: int) -> tuple[str, ...]:
        if value == cls.ACTIVE_ONLY:
            return (LifecycleStage.ACTIVE,)
        if value == cls.DELETED_ONLY:
            return (LifecycleStage.DELETED,)
        return (LifecycleStage.ACTIVE, LifecycleStage.DELETED)
