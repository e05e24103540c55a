from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.crypto import salted_hmac
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
    # Bumped by "logout everywhere": part of the session hash, so every session made before ends.
    session_generation = models.PositiveIntegerField(default=0, editable=False)

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

    def _get_session_auth_hash(self, secret: str | None = None) -> str:
        # Django's hash of the password, with the session generation folded in: a password
        # change or "logout everywhere" ends the user's other sessions.
        key_salt = "accounts.User.get_session_auth_hash"
        value = f"{self.password}:{self.session_generation}"
        return salted_hmac(key_salt, value, secret=secret, algorithm="sha256").hexdigest()

    @property
    def is_technician(self) -> bool:
        return self.role == self.Role.TECHNICIAN

    @property
    def is_radiologist(self) -> bool:
        return self.role == self.Role.RADIOLOGIST

    @property
    def is_joliba_admin(self) -> bool:
        return self.role == self.Role.ADMIN or self.is_superuser


class Modality(models.TextChoices):
    """The modalities a radiologist may be competent for (DICOM Modality codes)."""

    CR = "CR", _("Radiographie (CR)")
    DX = "DX", _("Radiographie numérique (DX)")
    CT = "CT", _("Scanner (CT)")
    MR = "MR", _("IRM (MR)")
    US = "US", _("Échographie (US)")
    MG = "MG", _("Mammographie (MG)")
    XA = "XA", _("Angiographie (XA)")
    RF = "RF", _("Radioscopie (RF)")
    NM = "NM", _("Médecine nucléaire (NM)")
    PT = "PT", _("TEP (PT)")
    # A photographed film, a secondary capture, a study whose modality is not said.
    OT = "OT", _("Autre : photo de film, capture (OT)")


def modality_group(code: str) -> str:
    """The competence a study's Modality needs: unknown or blank codes count as "OT"."""
    code = (code or "").strip().upper()
    return code if code in Modality.values else Modality.OT


DEFAULT_MAX_IN_HAND = 5


class ReaderProfile(models.Model):
    """What a radiologist may read: modalities, the sites they read for, how many cases at once.

    A radiologist without a profile reads nothing (sees no study, claims none): rights to read a
    site's studies are given, never assumed. Existing radiologists got a profile reading every
    modality for every site when this model arrived (migration 0003), so nobody was locked out.
    """

    user = models.OneToOneField(
        User,
        on_delete=models.CASCADE,
        related_name="reader_profile",
        verbose_name=_("radiologue"),
        limit_choices_to={"role": User.Role.RADIOLOGIST},
    )
    modalities = models.JSONField(
        _("modalités lues"), default=list, blank=True, help_text=_("Codes DICOM, par exemple CR, CT.")
    )
    all_sites = models.BooleanField(
        _("lit pour tous les sites"),
        default=False,
        help_text=_("Y compris les sites ajoutés plus tard et les examens d'origine inconnue."),
    )
    sites = models.ManyToManyField(Site, blank=True, related_name="readers", verbose_name=_("sites lus"))
    max_in_hand = models.PositiveSmallIntegerField(
        _("examens en main au plus"),
        default=DEFAULT_MAX_IN_HAND,
        validators=[MinValueValidator(1)],
        help_text=_("Nombre d'examens qu'il peut avoir en lecture en même temps."),
    )

    class Meta:
        verbose_name = _("profil de lecture")
        verbose_name_plural = _("profils de lecture")

    def __str__(self) -> str:
        return str(self.user.get_full_name() or self.user.username)

    def clean(self) -> None:
        super().clean()
        unknown = [m for m in self.modalities or [] if m not in Modality.values]
        if unknown:
            raise ValidationError({"modalities": _("Modalité inconnue : %s") % ", ".join(unknown)})
        if self.user_id and not self.user.is_radiologist:
            raise ValidationError({"user": _("Seul un radiologue a un profil de lecture.")})


def read_everything(user: User) -> ReaderProfile:
    """A profile reading every modality for every site (the demo radiologists, benchmarks, and
    radiologists who existed before profiles); an admin narrows it in the admin pages."""
    profile, _ = ReaderProfile.objects.get_or_create(
        user=user, defaults={"modalities": list(Modality.values), "all_sites": True}
    )
    return profile
