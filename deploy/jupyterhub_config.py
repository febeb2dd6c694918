# JupyterHub's configuration for ehkit on one server (see the README, "Several users").
# Everything is chosen by the EHKIT_HUB_* settings in ehkit-hub.env; ehkit.hub.load fills
# `c` from them (the login, no single-user servers, the forms as the hub's services), or
# stops the hub with one line saying which setting to fix.
from ehkit.hub import load

load(c)  # noqa: F821 - `c` is the configuration object JupyterHub hands this file

# A council's own additions go below, for example only two Entra ID groups:
# c.AzureAdOAuthenticator.allowed_groups = {"early-help-auditors", "early-help-coordinators"}
# c.AzureAdOAuthenticator.manage_groups = True
