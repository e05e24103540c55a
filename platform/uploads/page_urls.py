"""Pages of the resumable upload (mounted at /send/)."""

urlpatterns: list = []
