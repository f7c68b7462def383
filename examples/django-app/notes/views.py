import json
from pathlib import Path

from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

from notes.models import Note

VERSION = (Path(__file__).resolve().parent.parent / "VERSION").read_text().strip()


def index(request):
    if request.headers.get("Accept") == "application/json":
        return JsonResponse({"app": "django-app", "version": VERSION, "notes": Note.objects.count()})
    return HttpResponse(render_to_string("notes/index.html", {"version": VERSION, "notes": Note.objects.all()}))


def add(request):
    note = Note.objects.create(text=request.GET.get("text", "a note"))
    return JsonResponse({"id": note.id, "notes": Note.objects.count()})


def health(request):
    Note.objects.exists()  # the database answers and is migrated
    return HttpResponse(json.dumps({"ok": True}), content_type="application/json")
