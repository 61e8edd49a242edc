"""Project settings; every name is optional and Kilnflow's defaults apply.

See the Kilnflow documentation for the full list (HOOKS, CONF_SOURCE,
CONFIG_LOADER_ARGS, DATA_CATALOG_CLASS, SESSION_STORE_CLASS, ...).
"""

# Hook objects, e.g. HOOKS = (TimingHooks(),)
HOOKS = ()

CONFIG_LOADER_ARGS = {"base_env": "base", "default_run_env": "local"}
