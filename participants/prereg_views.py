"""The pre-registration page: the frozen plan and its hash, the deviation log, and the PI's freeze and amend forms."""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from participants import prereg
from participants.forms import StudyPeriodFilterForm
from participants.models import AnalysisPlan, Study
from participants.roles import researcher_required


class StudyForm(StudyPeriodFilterForm):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        del self.fields["start"], self.fields["end"]


class PlanForm(forms.Form):
    text = forms.CharField(label="Analysis plan", widget=forms.Textarea(attrs={"rows": 8, "cols": 90}))
    primary_outcomes = forms.CharField(
        label="Primary outcomes (one per line)", widget=forms.Textarea(attrs={"rows": 4, "cols": 40})
    )
    reason = forms.CharField(label="Why it changes (amendments only)", required=False)

    def outcomes(self) -> list[str]:
        return self.cleaned_data["primary_outcomes"].splitlines()


def _render(
    request: HttpRequest, form: StudyForm, study: Study | None, plan_form: PlanForm, status: int = 200
) -> HttpResponse:
    plan = AnalysisPlan.objects.filter(study=study).first() if study else None
    context = {
        "form": form,
        "study": study,
        "plan": plan,
        "deviations": list(plan.deviations.all()) if plan else [],
        "current_hash": prereg.document_hash(plan.current) if plan else "",
        "plan_form": plan_form,
        "is_pi": request.user.has_perm(prereg.PI_PERMISSION),
    }
    return render(request, "dashboards/prereg.html", context, status=status)


@researcher_required
def prereg_page(request: HttpRequest) -> HttpResponse:
    """GET shows the plan; POST (a PI) freezes it, or amends the text or outcomes with a reason."""
    query = request.GET.dict() if request.method == "GET" else {"study": request.POST.get("study", "")}
    form = StudyForm.from_query(query)
    if not form.is_valid():
        return _render(request, form, None, PlanForm(), status=400)
    study = form.cleaned_data["study"]
    if request.method != "POST":
        plan = AnalysisPlan.objects.filter(study=study).first()
        initial = (
            {"text": plan.current["analysis_plan"], "primary_outcomes": "\n".join(plan.current["primary_outcomes"])}
            if plan
            else {}
        )
        return _render(request, form, study, PlanForm(initial=initial))
    plan_form = PlanForm(request.POST)
    if not plan_form.is_valid():
        return _render(request, form, study, plan_form, status=400)
    try:
        if AnalysisPlan.objects.filter(study=study).exists():
            prereg.amend_plan(
                study=study,
                by=request.user,
                reason=plan_form.cleaned_data["reason"],
                text=plan_form.cleaned_data["text"],
                primary_outcomes=plan_form.outcomes(),
            )
        else:
            prereg.freeze_plan(
                study=study, text=plan_form.cleaned_data["text"], primary_outcomes=plan_form.outcomes(), by=request.user
            )
    except prereg.PreregError as error:
        field = error.field if error.field in plan_form.fields else None
        plan_form.add_error(field, error.message)
        return _render(request, form, study, plan_form, status=403 if "Only a PI" in error.message else 400)
    return redirect(f"{reverse('surveys:prereg')}?study={study.slug}")
