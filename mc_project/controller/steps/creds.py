"""``creds:*``: an environment's root password and SSH key pair, kept as secrets."""

from sqlalchemy import delete

from mc_project.controller import credentials, envs
from mc_project.inventory import db, secrets_crypto
from mc_project.inventory.models import Secret, SshKey


def _secret_owner(clip):
    return "env:{}".format(clip["env_uuid"])


def store_secrets(sess, keyring, owner, password, private_key):
    """``owner``'s secrets replaced by this root password and SSH private key."""
    sess.execute(delete(Secret).where(Secret.owner == owner))
    secrets_crypto.put(sess, keyring, owner, "root_password", password)
    secrets_crypto.put(sess, keyring, owner, "ssh_private_key", private_key)


def generate_credentials(ctl, ctx):
    """The root password and SSH key pair, kept as secrets (encrypted) in the inventory."""
    clip = ctx.clipboard
    owner = _secret_owner(clip)
    password = credentials.generate_password()
    private, public = credentials.generate_ssh_keypair("root@{}".format(clip["domain"]))
    with secrets_crypto.writing(ctl.settings["secrets_key"]) as keyring, db.session(ctl.url) as sess:
        env = envs.environment(sess, clip["env_name"])
        sess.execute(delete(SshKey).where(SshKey.environment_id == env.id))
        store_secrets(sess, keyring, owner, password, private)
        sess.add(SshKey(name="root", public_key=public, fingerprint=credentials.fingerprint(public),
                        environment_id=env.id))
    clip["ssh_public_key"] = public
    ctx.log("root password and SSH key pair stored as secrets of {}".format(owner))


def sealed_password_hash(ctl, clip):
    """The hash of the stored root password, sealed to the node's key: the job's load, kept in
    the master's job cache, holds no hash."""
    with db.session(ctl.url) as sess:
        password = secrets_crypto.values(sess, secrets_crypto.load(ctl.settings["secrets_key"]),
                                         _secret_owner(clip))["root_password"]
    return ctl.seal(clip["node"]["minion_id"], credentials.password_hash(password))


def install_credentials(ctl, ctx):
    """The stored credentials into the running container; its host keys onto the clipboard
    (the DNS step publishes them as SSHFP records)."""
    clip, node = ctx.clipboard, ctx.clipboard["node"]
    ctl.call(node["minion_id"], "mc_lxc.set_root_password", name=envs.container_of(clip),
             sealed_hash=sealed_password_hash(ctl, clip), lxc_path=node["lxc_path"])
    ctl.call(node["minion_id"], "mc_lxc.authorize_key", name=envs.container_of(clip), public_key=clip["ssh_public_key"],
             lxc_path=node["lxc_path"])
    clip["host_keys"] = ctl.call(node["minion_id"], "mc_lxc.host_keys", name=envs.container_of(clip),
                                 lxc_path=node["lxc_path"])
    ctx.log("root password and key set in container {}".format(envs.container_of(clip)))


def remove_credentials(ctl, ctx):
    clip = ctx.clipboard
    with db.session(ctl.url) as sess:
        sess.execute(delete(Secret).where(Secret.owner == _secret_owner(clip)))
        env = envs.find_environment(sess, clip["env_name"])
        if env is not None:
            sess.execute(delete(SshKey).where(SshKey.environment_id == env.id))


STEPS = {
    "creds:generate": (generate_credentials, remove_credentials),
    # Undone with the container it changed. init_env now writes the credentials in at boot
    # (lxc:boot); jobs recorded before it still name this step when they are resumed.
    "creds:install": (install_credentials, None),
    "creds:remove": (remove_credentials, None),
}
