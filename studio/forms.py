"""Browser forms; they validate input and hand cleaned data to services."""

from __future__ import annotations

from django import forms

from studio.models import Approach, Objective, ProblemStatement, Role, SuccessCriterion, TaskType


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200)
    business_problem = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="What business problem does this project solve?",
    )


class ObjectiveForm(forms.ModelForm):
    class Meta:
        model = Objective
        fields = [
            "title",
            "kpi",
            "target_value",
            "unit",
            "direction",
            "deadline",
            "owner",
            "status",
        ]
        widgets = {"deadline": forms.DateInput(attrs={"type": "date"})}
        labels = {"kpi": "KPI"}

    def __init__(self, *args, members=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = members
        self.fields["owner"].required = False


class ProblemForm(forms.Form):
    task_type = forms.ChoiceField(choices=TaskType.choices)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    serving_mode = forms.ChoiceField(choices=ProblemStatement.ServingMode.choices)
    latency_budget_ms = forms.IntegerField(min_value=1, required=False, label="Latency budget (ms)")
    model_size_budget_mb = forms.IntegerField(
        min_value=1, required=False, label="Model size budget (MB)"
    )


class ApproachForm(forms.Form):
    name = forms.CharField(max_length=200)
    notes = forms.CharField(max_length=2000, required=False)
    priority = forms.IntegerField(min_value=1, max_value=99, initial=1)
    status = forms.ChoiceField(choices=Approach.Status.choices, initial="proposed")


class CriterionForm(forms.Form):
    metric = forms.CharField(max_length=64, help_text="e.g. mAP50, mIoU, accuracy")
    # Initial values let an untouched extra row count as empty rather than half-filled.
    comparison = forms.ChoiceField(choices=SuccessCriterion.Comparison.choices, initial="gte")
    threshold = forms.FloatField()
    slice = forms.CharField(
        max_length=200, required=False, help_text="field=value, empty for all data"
    )

    def clean_slice(self):
        value = self.cleaned_data["slice"].strip()
        if value and "=" not in value:
            raise forms.ValidationError("Write the slice as field=value, e.g. lighting=dark.")
        return value


ApproachFormSet = forms.formset_factory(ApproachForm, extra=1, can_delete=True)
CriterionFormSet = forms.formset_factory(CriterionForm, extra=2, can_delete=True)


class DatasetForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*,.zip"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(d, initial) for d in data]
        return [single(data, initial)]


class UploadForm(forms.Form):
    files = MultipleFileField(
        help_text="Images (JPEG, PNG, WebP, TIFF, BMP) and/or zip archives of them."
    )


class MetadataForm(forms.Form):
    file = forms.FileField(
        help_text="CSV with a file_name column, or JSON keyed by file name.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.json"}),
    )


# Least privileged first, so a role nobody chose is the one that can do least.
ROLES_LEAST_FIRST = [(r.value, r.label) for r in reversed(Role)]


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(
        choices=ROLES_LEAST_FIRST,
        initial=Role.VIEWER,
        required=False,
        help_text="Viewer unless you choose otherwise.",
    )

    def clean_role(self) -> str:
        return self.cleaned_data.get("role") or Role.VIEWER


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class SnapshotForm(forms.Form):
    note = forms.CharField(max_length=300, required=False)
