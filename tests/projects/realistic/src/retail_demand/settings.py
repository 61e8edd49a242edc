"""Project settings: the hook that logs what each run produced."""

from retail_demand.hooks import RunReport

HOOKS = (RunReport(),)
