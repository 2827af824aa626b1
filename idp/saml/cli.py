"""Admin commands: ``flask --app wsgi saml add-sp|list-sps|remove-sp`` and
``flask --app wsgi zulip saml-settings`` (the block for Zulip's /etc/zulip/settings.py)."""

from __future__ import annotations

import os

import click
import requests
from flask.cli import AppGroup

from ..cli import admin_command, zulip_cli
from ..extensions import db
from ..keys import get_keystore
from .attributes import DEFAULT_PROFILE, PROFILES
from .constants import BINDING_POST, BINDING_REDIRECT
from .metadata import MetadataError, read_sp_metadata
from .registry import RegistryError, SPDefinition, first_sp, get_sp, list_sps, remove_sp, save_sp
from .settings import get_saml_settings, valid_subdomain

saml_cli = AppGroup("saml", help="SAML service providers (Zulip and others).")
_SLO_BINDINGS = {"redirect": BINDING_REDIRECT, "post": BINDING_POST}
MAX_METADATA_BYTES = 1024 * 1024


def _read_metadata(source: str) -> bytes:
    if source.startswith(("http://", "https://")):
        try:
            with requests.get(source, timeout=10, stream=True) as response:
                response.raise_for_status()
                data = response.raw.read(MAX_METADATA_BYTES + 1, decode_content=True)
        except requests.RequestException as exc:
            raise click.ClickException(f"cannot fetch {source}: {exc}") from None
    else:
        try:
            with open(source, "rb") as fh:
                data = fh.read(MAX_METADATA_BYTES + 1)
        except OSError as exc:
            raise click.ClickException(f"cannot read {source}: {exc.strerror}") from None
    if len(data) > MAX_METADATA_BYTES:
        raise click.ClickException("the metadata is larger than 1 MiB")
    return data


def _slo_text(url: str | None, binding: str, response_url: str | None = None) -> str:
    if not url:
        return "-"
    responses = f", responses to {response_url}" if response_url else ""
    return f"{url} ({binding.rsplit(':', 1)[1]}){responses}"


def _read_cert(value: str | None) -> str | None:
    if value and os.path.isfile(value):
        with open(value) as fh:
            return fh.read()
    return value


@saml_cli.command("add-sp")
@click.option("--metadata", "metadata_source", metavar="FILE_OR_URL",
              help="the SP's SAML metadata (Zulip: https://<host>/saml/metadata.xml)")
@click.option("--entity-id", help="the SP entity id (Zulip: https://<host>)")
@click.option("--acs-url", multiple=True, help="an ACS URL, HTTP-POST (Zulip: "
              "https://<host>/complete/saml/); repeat for more, the first is the default")
@click.option("--slo-url", help="the SP's Single Logout URL (Zulip: the ACS URL)")
@click.option("--slo-binding", type=click.Choice(["redirect", "post"]), default=None,
              help="how the SP takes logout messages (default: as the metadata says, HTTP-"
                   "Redirect when it offers both; else redirect; Zulip: redirect)")
@click.option("--slo-response-url", help="where the SP takes LogoutResponses, if not at the "
              "SLO URL (its SingleLogoutService ResponseLocation; https only)")
@click.option("--cert", help="the SP's signing certificate: a PEM file or base64 DER")
@click.option("--want-signed-requests/--no-want-signed-requests", default=None,
              help="refuse unsigned AuthnRequests (default: as the metadata says, else off)")
@click.option("--sign", type=click.Choice(["both", "assertion", "response"]), default="both",
              show_default=True, help="what to sign in each SAML Response")
@click.option("--profile", type=click.Choice(sorted(PROFILES)), default=DEFAULT_PROFILE,
              show_default=True, help="attribute-release profile")
@click.option("--replace", is_flag=True, help="update the SP if it is already registered")
def add_sp(metadata_source, entity_id, acs_url, slo_url, slo_binding, slo_response_url, cert,
           want_signed_requests, sign, profile, replace):
    """Register a service provider, from its metadata or by hand."""
    want_signed = bool(want_signed_requests)
    binding = _SLO_BINDINGS.get(slo_binding, BINDING_REDIRECT)
    if metadata_source:
        try:
            meta = read_sp_metadata(_read_metadata(metadata_source))
        except MetadataError as exc:
            raise click.ClickException(f"unusable metadata: {exc}") from None
        entity_id = entity_id or meta.entity_id
        acs_url = acs_url or tuple(meta.acs_urls)
        if slo_url is None:
            slo_url, binding = meta.slo_endpoint(_SLO_BINDINGS.get(slo_binding))
            if slo_url is None and slo_binding is not None:
                raise click.ClickException(f"the metadata offers no SingleLogoutService with "
                                           f"the {slo_binding} binding: give --slo-url")
            if slo_response_url is None:
                slo_response_url = meta.slo_response_url(binding)
        cert = cert or meta.certificate_b64
        if want_signed_requests is None:
            want_signed = meta.want_authn_requests_signed
    elif not entity_id or not acs_url:
        raise click.UsageError("give --metadata FILE_OR_URL, or --entity-id and --acs-url")
    definition = SPDefinition(
        entity_id=entity_id, acs_urls=list(acs_url), slo_url=slo_url, slo_binding=binding,
        slo_response_url=slo_response_url, certificate=_read_cert(cert),
        want_authn_requests_signed=want_signed,
        sign_assertion=sign in ("both", "assertion"), sign_response=sign in ("both", "response"),
        attribute_profile=profile)
    try:
        save_sp(definition, replace=replace)
    except RegistryError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"registered SP {definition.entity_id}")
    click.echo(f"  ACS: {', '.join(definition.acs_urls)}")
    click.echo(f"  SLO: {_slo_text(definition.slo_url, binding, definition.slo_response_url)}"
               f"; signs: {sign}; "
               f"profile: {profile}; "
               f"signed requests required: {'yes' if want_signed else 'no'}")


@saml_cli.command("list-sps")
def list_sps_command():
    """List the registered service providers."""
    rows = list_sps()
    if not rows:
        click.echo(f"no service providers registered ({admin_command('saml add-sp ...')})")
    for sp in rows:
        signs = "both" if sp.sign_assertion and sp.sign_response else (
            "assertion" if sp.sign_assertion else "response")
        click.echo(f"{sp.entity_id}\n  ACS: {', '.join(sp.acs_urls)}\n  SLO: "
                   f"{_slo_text(sp.slo_url, sp.slo_binding, sp.slo_response_url)}"
                   f"\n  signs: {signs}; profile: {sp.attribute_profile}; certificate: "
                   f"{'yes' if sp.certificate else 'no'}; signed requests required: "
                   f"{'yes' if sp.want_authn_requests_signed else 'no'}")


@saml_cli.command("remove-sp")
@click.argument("entity_id")
def remove_sp_command(entity_id):
    """Remove a service provider (it can no longer receive assertions)."""
    if not remove_sp(entity_id):
        raise click.ClickException(f"no SP {entity_id!r} is registered (see saml list-sps)")
    db.session.commit()
    click.echo(f"removed SP {entity_id}")


@saml_cli.command("prune")
def prune_command():
    """Delete expired pending requests and logout chains, and old SAML login rows."""
    from flask import current_app

    from .housekeeping import prune

    counts = prune(current_app.config["IDP"].session_lifetime)
    db.session.commit()
    click.echo("pruned " + ", ".join(f"{n} {what}" for what, n in counts.items()))


def _py(value, indent: int = 0) -> str:
    """A Python literal for settings.py, one key per line."""
    pad = " " * indent
    if isinstance(value, dict):
        lines = [f'{pad}    "{k}": {_py(v, indent + 4).lstrip()},' for k, v in value.items()]
        return "{\n" + "\n".join(lines) + f"\n{pad}}}"
    if isinstance(value, list):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    if isinstance(value, bool):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def zulip_settings_block(*, idp_name: str, display_name: str, sp_entity_id: str,
                         subdomain: str, groups: list[str], cert_path: str) -> str:
    settings = get_saml_settings()
    idp = {
        "entity_id": settings.entity_id,
        "url": settings.sso_url,
        "slo_url": settings.slo_url,
        "sp_initiated_logout_enabled": True,
        "attr_user_permanent_id": "email",
        "attr_first_name": "first_name",
        "attr_last_name": "last_name",
        "attr_username": "email",
        "attr_email": "email",
        "extra_attrs": ["zulip_role"],
        "display_name": display_name,
        "x509cert_path": cert_path,
    }
    sync = {subdomain: {"saml": {"role": "zulip_role", "groups": groups}}}
    return (f"# Generated by `flask --app wsgi zulip saml-settings` for {settings.entity_id}\n"
            "# Also add \"zproject.backends.SAMLAuthBackend\" to AUTHENTICATION_BACKENDS.\n"
            f"SOCIAL_AUTH_SAML_SP_ENTITY_ID = {_py(sp_entity_id)}\n"
            f"SOCIAL_AUTH_SAML_ENABLED_IDPS = {_py({idp_name: idp})}\n"
            f"SOCIAL_AUTH_SYNC_ATTRS_DICT = {_py(sync)}\n")


@zulip_cli.command("saml-settings")
@click.option("--idp-name", default="lms", show_default=True, help="the IdP's key in Zulip")
@click.option("--display-name", default="LMS", show_default=True,
              help="the login button's label in Zulip")
@click.option("--sp", "sp_entity_id", help="Zulip's SP entity id (default: the first "
              "registered SP)")
@click.option("--subdomain", default=None, help="Zulip realm subdomain for role/group sync "
              "(default IDP_SAML_ZULIP_SUBDOMAIN; '' is the root realm)")
@click.option("--groups", default="students,mentors,staff", show_default=True,
              help="comma-separated Zulip groups to sync (never list zulip_groups in "
                   "extra_attrs)")
@click.option("--cert-out", type=click.Path(dir_okay=False, writable=True), default=None,
              help="also write the IdP certificate to this file (default: print it only)")
@click.option("--zulip-cert-path", default=None,
              help="where the certificate lives on the Zulip server (default "
                   "/etc/zulip/saml/idps/<idp-name>.crt)")
@click.option("--staged", is_flag=True, help="write the staged (next) certificate, during a "
              "key rotation")
def saml_settings(idp_name, display_name, sp_entity_id, subdomain, groups, cert_out,
                  zulip_cert_path, staged):
    """Print the block for Zulip's /etc/zulip/settings.py and write the certificate file."""
    if not valid_subdomain(idp_name) or not idp_name:
        raise click.UsageError("--idp-name must be a short slug such as lms")
    subdomain = get_saml_settings().zulip_subdomain if subdomain is None else subdomain
    if not valid_subdomain(subdomain):
        raise click.UsageError("--subdomain must be a realm subdomain ('' for the root realm)")
    if sp_entity_id is None:
        sp = first_sp()
        if sp is None:
            raise click.ClickException("register Zulip first: " + admin_command(
                "saml add-sp --metadata https://<zulip host>/saml/metadata.xml"))
        sp_entity_id = sp.entity_id
    elif get_sp(sp_entity_id) is None:
        click.echo(f"warning: {sp_entity_id} is not registered yet (saml add-sp)", err=True)
    store = get_keystore()
    key = store.staged() if staged else store.current()
    if key is None:
        raise click.ClickException(f"no staged key: run {admin_command('keys rotate')} first")
    if cert_out:
        with open(cert_out, "w") as fh:
            fh.write(key.certificate_pem)
    click.echo(_settings_text(idp_name, display_name, sp_entity_id, subdomain, groups,
                              zulip_cert_path or f"/etc/zulip/saml/idps/{idp_name}.crt"),
               nl=False)
    which = f"the {'staged' if staged else 'current'} certificate ({key.kid})"
    if cert_out:
        click.echo(f"wrote {which} to {cert_out}: copy it to the Zulip server at the "
                   f"x509cert_path above", err=True)
    else:  # nothing is written into the working directory unless --cert-out asks for it
        click.echo(f"{which}, to save on the Zulip server at the x509cert_path above (or "
                   f"write it to a file with --cert-out PATH):\n{key.certificate_pem}",
                   err=True, nl=False)
    if not staged and store.staged() is not None:
        click.echo(f"note: key {store.staged().kid} is staged; after `keys rotate` activates "
                   "it, run this again and replace the file on Zulip", err=True)


def _settings_text(idp_name, display_name, sp_entity_id, subdomain, groups, cert_path) -> str:
    group_list = [g.strip() for g in groups.split(",") if g.strip()]
    if "zulip_groups" in group_list:
        raise click.UsageError("zulip_groups is the attribute, not a group name")
    return zulip_settings_block(idp_name=idp_name, display_name=display_name,
                                sp_entity_id=sp_entity_id, subdomain=subdomain,
                                groups=group_list, cert_path=cert_path)
