# JupyterHub's configuration for ehkit on one server (see the README, "Several users").
# Everything is chosen by the EHKIT_HUB_* settings in ehkit-hub.env; ehkit.hub.configure
# fills `c` from them: the login, no single-user servers, the forms as the hub's services.
from ehkit.hub import configure

configure(c)  # noqa: F821 - `c` is the configuration object JupyterHub hands this file

# A council's own additions go below, for example only two Entra ID groups:
# c.AzureAdOAuthenticator.allowed_groups = {"early-help-auditors", "early-help-coordinators"}
# c.AzureAdOAuthenticator.manage_groups = True
