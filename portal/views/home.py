"""The signed-in home: the person's own record and, for a parent, their own active children.

No id ever comes from the request: everything is looked up through the signed-in user's own
links (portal.selectors), so no URL or query string shows another family's data.
"""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from portal import selectors


@never_cache
@login_required
def home(request):
    user = request.user
    return render(
        request,
        "portal/home.html",
        {
            "children": list(selectors.linked_children(user=user)),
            "guardian": selectors.own_guardian_record(user=user),
            "student": selectors.own_student_record(user=user),
            "is_parent": user.role == user.Role.PARENT,
            "is_student": user.role == user.Role.STUDENT,
        },
    )
