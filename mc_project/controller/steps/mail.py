"""``mail:send``: the access details, mailed to the requester."""

from mc_project.controller import envs, mail
from mc_project.errors import CorpusError


def send_access_mail(ctl, ctx):
    """Mail the requester; a mail relay that fails is reported, not a failed environment."""
    clip = ctx.clipboard
    smtp = ctl.settings["smtp"]
    if not clip.get("requester"):
        ctx.log("no requester: no mail sent")
        return
    if not smtp.get("host"):
        clip["mail_error"] = "no mail relay is configured"
        ctx.log("no mail relay is configured: no mail sent")
        return
    try:
        subject, body = mail.access_mail(envs.access_details(clip))
        mail.send_mail(smtp, clip["requester"], subject, body)
    except CorpusError as exc:
        clip["mail_error"] = str(exc)
        ctx.log("access mail not sent: {}".format(exc))
        return
    clip.pop("mail_error", None)
    ctx.log("access details mailed to {}".format(clip["requester"]))


STEPS = {
    "mail:send": (send_access_mail, None),
}
