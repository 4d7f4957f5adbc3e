"""The Prefect adapter around the plain pass (``gardener.pipeline``): flows and tasks
(``flows``), deployments on a schedule (``serve``), Prefect's settings and its temporary API
server (``runtime``, ``reaper``), the markdown artifacts (``artifacts``).

Takes what the plain pass takes; gives the same outcomes, as Prefect flow runs. Importing it
prepares Prefect's environment first (``runtime.ensure``): Prefect reads it once, at import,
so nothing here may import Prefect before this line has run.
"""

from gardener.pipeline.prefect import runtime

runtime.ensure()
