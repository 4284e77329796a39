"""How the panel shows itself: the kernel or override decides the face; Colab's widget manager;
the static face outside a kernel; a closed panel."""

from __future__ import annotations

import sys

import pytest
from ui_harness import make_panel, random_study

from hpwidgets.ui import Dashboard
from hpwidgets.ui.panel import frontend_mode


def test_frontend_mode_follows_the_kernel_and_the_override(monkeypatch):
    monkeypatch.delenv("HPWIDGETS_DASHBOARD", raising=False)
    assert frontend_mode() == "static"  # pytest is no IPython kernel
    monkeypatch.setenv("HPWIDGETS_DASHBOARD", "widget")
    assert frontend_mode() == "widget" and frontend_mode("static") == "static"
    with pytest.raises(ValueError, match="mode"):
        frontend_mode("html")


class FakeColabOutput:
    """Stands in for ``google.colab.output``: what the panel calls there, and the manager's URL."""

    def __init__(self, url: str | None) -> None:
        self.enabled = 0
        self._widgets = type("Widgets", (), {"_installed_url": url})()

    def enable_custom_widget_manager(self) -> None:
        self.enabled += 1


def test_widget_face_outside_colab_is_the_plain_widget_bundle(sent, panels):
    panel = make_panel(panels, random_study())
    bundle = panel._repr_mimebundle_()
    assert isinstance(bundle, dict)
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.widget.model_id


@pytest.mark.parametrize("url", ["https://ssl.gstatic.com/colaboratory-static/widgets/manager.js", None])
def test_widget_face_in_colab_turns_on_its_widget_manager(sent, panels, monkeypatch, url):
    colab = FakeColabOutput(url)
    monkeypatch.setitem(sys.modules, "google.colab.output", colab)
    panel = make_panel(panels, random_study())
    bundle = panel._repr_mimebundle_()
    assert colab.enabled >= 1  # the anywidget chart and the panel both ask; Colab's call is idempotent
    if url is None:  # an older Colab without the URL: the widget bundle alone, as anywidget does
        assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.widget.model_id
        return
    data, metadata = bundle
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.widget.model_id
    assert metadata == {"application/vnd.jupyter.widget-view+json": {"colab": {"custom_widget_manager": {"url": url}}}}


def test_static_face_prints_a_progress_line_and_keeps_an_svg(capsys):
    study = random_study()
    panel = Dashboard(study, mode="static")
    try:
        panel.show()
        study.optimize(lambda p: p["x"], trials=5, progress=False)
        bundle = panel._repr_mimebundle_()
        assert panel.widget is None and "<svg" in bundle["text/html"] and "5/5 trials" in bundle["text/plain"]
        assert "complete · 5/5 trials" in capsys.readouterr().out
    finally:
        panel.close()


def test_closed_panel_stops_listening(sent, panels):
    study = random_study()
    panel = make_panel(panels, study)
    panel.close()
    study.optimize(lambda p: p["x"], trials=3, progress=False)
    assert panel._stats.done == 0
