"""merge the feature branches (SAML, OIDC, provisioning) into one head

Revision ID: 0005_merge_features
Revises: 0002_saml, 0003_oidc, 0004_provisioning
"""

revision = "0005_merge_features"
down_revision = ("0002_saml", "0003_oidc", "0004_provisioning")
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
