"""What people may send: validated here, before anything reaches Harness."""

from django import forms


class AskForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[("question", "Ask a question"), ("ticket", "Open a ticket")],
        initial="question",
    )
    text = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 4}))


class FeedbackForm(forms.Form):
    helpful = forms.TypedChoiceField(
        choices=[("yes", "Helpful"), ("no", "Not helpful")],
        coerce=lambda v: v == "yes",
    )
    comment = forms.CharField(max_length=500, required=False)


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("deny", "Deny")])
    reason = forms.CharField(max_length=500, required=False)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("decision") == "deny" and not cleaned.get("reason", "").strip():
            self.add_error("reason", "Say why: the requester is told.")
        return cleaned
