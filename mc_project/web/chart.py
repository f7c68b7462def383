"""Small charts drawn on the server as inline SVG (no chart library, no script).

``slots_per_node`` is a horizontal bar per node: used slots filled, free ones empty,
scaled to the node with the most slots. ``durations`` is a bar per job, oldest left,
height its duration: how long environments took to make, at a glance. Both scale to
the width of the page (``viewBox``) and carry a ``<title>`` per bar for a tooltip.
"""

from markupsafe import Markup, escape

BAR = 22
GAP = 8
LABEL = 110
WIDTH = 600
MAX_COLUMN = 24  # a few jobs are thin columns, not a wall


def slots_per_node(nodes):
    """``nodes``: ``[{"name", "slots", "free_slots"}]``."""
    if not nodes:
        return Markup("")
    most = max(max(node["slots"] for node in nodes), 1)
    span = WIDTH - LABEL - 70
    height = len(nodes) * (BAR + GAP) + GAP
    parts = ['<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="Slots used per node">'.format(
        WIDTH, height)]
    for number, node in enumerate(nodes):
        used = node["slots"] - node["free_slots"]
        top = GAP + number * (BAR + GAP)
        whole = span * node["slots"] / most
        filled = whole * used / node["slots"] if node["slots"] else 0
        parts.append('<text x="{}" y="{}" class="label" text-anchor="end">{}</text>'.format(
            LABEL - 8, top + BAR * 0.7, escape(node["name"])))
        parts.append('<rect x="{}" y="{}" width="{:.1f}" height="{}" class="free"><title>{} free</title></rect>'
                     .format(LABEL, top, max(whole, 1), BAR, node["free_slots"]))
        parts.append('<rect x="{}" y="{}" width="{:.1f}" height="{}" class="used"><title>{} used</title></rect>'
                     .format(LABEL, top, filled, BAR, used))
        parts.append('<text x="{:.1f}" y="{}" class="value">{} / {}</text>'.format(
            LABEL + whole + 6, top + BAR * 0.7, used, node["slots"]))
    parts.append("</svg>")
    return Markup("".join(parts))


def durations(jobs_seen, height=140):
    """``jobs_seen``: ``[{"id", "target", "seconds", "status"}]``, oldest first."""
    if not jobs_seen:
        return Markup("")
    longest = max(max(job["seconds"] or 0 for job in jobs_seen), 1)
    plot = height - 30
    step = min((WIDTH - 50) / len(jobs_seen), MAX_COLUMN)
    parts = ['<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="Job durations">'.format(WIDTH, height),
             '<text x="0" y="12" class="label">{:.0f} s</text>'.format(longest),
             '<line x1="44" y1="{0}" x2="{1}" y2="{0}" class="axis"/>'.format(plot + 10, WIDTH)]
    for number, job in enumerate(jobs_seen):
        tall = plot * (job["seconds"] or 0) / longest
        parts.append('<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" class="{}">'
                     '<title>job {} {}: {:.1f} s ({})</title></rect>'.format(
                         50 + number * step, plot + 10 - tall, max(step - 3, 1), max(tall, 1),
                         "used" if job["status"] == "success" else "failed", job["id"], escape(job["target"]),
                         job["seconds"] or 0, escape(job["status"])))
    parts.append('<text x="50" y="{}" class="label">oldest</text>'.format(height - 4))
    parts.append('<text x="{:.0f}" y="{}" class="label" text-anchor="end">newest</text>'.format(
        max(50 + step * len(jobs_seen), 140), height - 4))
    parts.append("</svg>")
    return Markup("".join(parts))
