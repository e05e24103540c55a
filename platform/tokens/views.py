"""« Jetons des agents »: an admin lists, issues and revokes the machine tokens of the site they
are attached to (an admin attached to no site: of every site). studies.access decides; a token
the user may not manage answers 404."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from studies import access

from . import service
from .forms import IssueForm
from .models import MachineToken


def _manager(request: HttpRequest) -> User:
    user = access.signed_in(request)
    if not access.may_open_tokens_page(user):
        raise Http404
    return user


def _page(request: HttpRequest, user: User, form: IssueForm, status: int = 200) -> HttpResponse:
    tokens = MachineToken.objects.select_related("user", "site", "created_by", "revoked_by")
    shown = [t for t in tokens if access.may_manage_tokens(user, t.site)]  # a few per site
    return render(request, "tokens/list.html", {"tokens": shown, "form": form}, status=status)


@never_cache
@login_required
@require_GET
def token_list(request: HttpRequest) -> HttpResponse:
    user = _manager(request)
    return _page(request, user, IssueForm(manager=user))


@never_cache
@login_required
@require_POST
def issue(request: HttpRequest) -> HttpResponse:
    user = _manager(request)
    form = IssueForm(request.POST, manager=user)
    if not form.is_valid():
        return _page(request, user, form, status=400)
    owner = form.cleaned_data["user"]
    if not access.may_manage_tokens(user, owner.site):  # the form offers only these; checked again
        raise Http404
    try:
        token, secret = service.issue(
            owner, name=form.cleaned_data["name"], days=form.cleaned_data["days"], by=user, request=request
        )
    except service.TokenNotIssued as exc:
        form.add_error(None, str(exc))
        return _page(request, user, form, status=400)
    # Shown in this answer only (never stored, never in a redirect or a message).
    return render(request, "tokens/issued.html", {"token": token, "secret": secret})


@never_cache
@login_required
@require_POST
def revoke(request: HttpRequest, pk: int) -> HttpResponse:
    user = _manager(request)
    token = get_object_or_404(MachineToken.objects.select_related("site"), pk=pk)
    if not access.may_manage_tokens(user, token.site):
        raise Http404
    if service.revoke(token, by=user, request=request):
        messages.success(request, _("Jeton « %(name)s » révoqué.") % {"name": token.name})
    else:
        messages.info(request, _("Ce jeton était déjà révoqué."))
    return redirect("tokens:list")
