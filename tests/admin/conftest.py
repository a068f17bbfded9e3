"""Admin fixtures: logged-in clients for a superuser and for staff with each project role,
and a helper that turns a rendered admin form into the POST data a browser would send."""

from __future__ import annotations

import pytest
from django import forms
from django.test import Client

from tests.factories import MemberFactory, UserFactory


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def su_client(superuser) -> Client:
    return _client(superuser)


@pytest.fixture
def staff_client(project, owner):
    """staff_client("member") → a client for a staff user with that role in `project`
    (None: staff without any membership)."""

    def make(role: str | None, username: str | None = None) -> Client:
        user = UserFactory(username=username or f"staff-{role or 'none'}", is_staff=True)
        if role is not None:
            MemberFactory(project=project, user=user, role=role, actor=owner)
        return _client(user)

    return make


def _value(field: forms.Field, bound) -> object:
    value = bound.value()
    if isinstance(field.widget, forms.CheckboxInput):
        return "on" if value else None
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return str(value)


def _put(data: dict, form: forms.BaseForm) -> None:
    for name, field in form.fields.items():
        if isinstance(field.widget, forms.MultiWidget):  # e.g. a split date + time
            for i, part in enumerate(field.widget.decompress(form[name].value())):
                data[f"{form.add_prefix(name)}_{i}"] = "" if part is None else str(part)
            continue
        value = _value(field, form[name])
        if value is not None:
            data[form.add_prefix(name)] = value


def admin_form_data(response) -> dict:
    """What the browser would post back for the add / change page in `response`
    (the main form and every inline formset, management forms included)."""
    data: dict = {}
    _put(data, response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        _put(data, formset.management_form)
        for form in formset.forms:
            _put(data, form)
    return data


def add_inline_row(data: dict, prefix: str, **values) -> None:
    """Append a new row to inline formset `prefix` in `data`."""
    index = int(data[f"{prefix}-TOTAL_FORMS"])
    data[f"{prefix}-TOTAL_FORMS"] = str(index + 1)
    for name, value in values.items():
        data[f"{prefix}-{index}-{name}"] = str(value)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []
