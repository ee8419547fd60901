"""``python -m tsnegrid.service --data DIR``: the same as ``tsnegrid serve``."""

from tsnegrid.service.cli import serve

serve(prog_name="python -m tsnegrid.service")
