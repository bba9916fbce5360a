"""/help/: the three choices behind the Help link of the sign-in page (SPEC §2 item 4)."""

from django.http import QueryDict
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.generic import TemplateView


class IgnoresQueryString:
    """For Help pages that take no parameters: whatever the query string holds is dropped
    before the page is built, so nothing typed into a URL is echoed back (the language
    switcher's `next` included) and the page is the same for every query string (checklist A5).
    """

    def setup(self, request, *args, **kwargs):
        request.GET = QueryDict()
        request.META["QUERY_STRING"] = ""
        super().setup(request, *args, **kwargs)


@method_decorator(never_cache, name="dispatch")
class HelpView(IgnoresQueryString, TemplateView):
    template_name = "recovery/help/help.html"
