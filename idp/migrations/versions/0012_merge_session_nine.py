"""merge the branches of issues 11-14 (outbox and revocation, SAML logout replay, OIDC
consents, history and nudges, agents) into one head

Revision ID: 0012_merge_session_nine
Revises: 0007_deprovisioning, 0008_saml_logout_replay, 0009_oidc_consent,
         0010_history_nudges, 0011_agents
"""

revision = "0012_merge_session_nine"
down_revision = ("0007_deprovisioning", "0008_saml_logout_replay", "0009_oidc_consent",
                 "0010_history_nudges", "0011_agents")
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
