"""The landing page: what the store holds, by channel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from tsunagu.api.deps import StoreDep
from tsunagu.catalog.overview import overview
from tsunagu.web.i18n import JST, lang_of, translator

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


@router.get("/", response_class=HTMLResponse)
def home(request: Request, store: StoreDep, lang: str | None = None) -> Any:
    lang = lang_of(lang)
    data = overview(store=store)
    last = data.last_event_at
    return templates.TemplateResponse(
        request,
        "home.html",
        {
            "lang": lang,
            "other_lang": "en" if lang == "ja" else "ja",
            "t": translator(lang),
            "o": data,
            "last_event_jst": last.astimezone(JST).strftime("%Y-%m-%d %H:%M JST") if last else None,
        },
    )
