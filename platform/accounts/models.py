from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


class Site(models.Model):
    """A regional hospital that sends studies."""

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("nom"), max_length=200)
    region = models.CharField(_("région"), max_length=100)
    phone = models.CharField(_("téléphone"), max_length=32, blank=True)
    email = models.EmailField(_("courriel"), blank=True)
    dicom_aet = models.CharField(
        _("AE title DICOM"),
        max_length=16,
        blank=True,
        help_text=_("Calling AE title of the site's modality or gateway, for studies sent by C-STORE."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("site")

    def __str__(self) -> str:
        return f"{self.name} ({self.region})"


class User(AbstractUser):
    class Role(models.TextChoices):
        TECHNICIAN = "technician", _("Technicien")
        RADIOLOGIST = "radiologist", _("Radiologue")
        ADMIN = "admin", _("Administrateur")

    role = models.CharField(_("rôle"), max_length=16, choices=Role.choices)
    site = models.ForeignKey(
        Site,
        verbose_name=_("site"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="users",
    )
    phone = models.CharField(_("téléphone"), max_length=32, blank=True)

    class Meta:
        verbose_name = _("utilisateur")
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(role="technician") | models.Q(site__isnull=False),
                name="technician_has_site",
            )
        ]

    def clean(self) -> None:
        super().clean()
        if self.role == self.Role.TECHNICIAN and not self.site_id:
            raise ValidationError({"site": _("Un technicien appartient à un site.")})

    @property
    def is_technician(self) -> bool:
        return self.role == self.Role.TECHNICIAN

    @property
    def is_radiologist(self) -> bool:
        return self.role == self.Role.RADIOLOGIST

    @property
    def is_joliba_admin(self) -> bool:
        return self.role == self.Role.ADMIN or self.is_superuser
