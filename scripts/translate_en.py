"""Fill platform/joliba/locale/en/LC_MESSAGES/django.po from the table below (French → English).

Run after `manage.py makemessages -l en`; untranslated strings fall back to French.
"""

import re
from pathlib import Path

PO = Path(__file__).resolve().parent.parent / "platform/joliba/locale/en/LC_MESSAGES/django.po"
EN = {
    "Sites et comptes": "Sites and accounts", "code": "code", "nom": "name", "région": "region",
    "téléphone": "phone", "courriel": "email", "AE title DICOM": "DICOM AE title", "site": "site",
    "Technicien": "Technician", "Radiologue": "Radiologist", "Administrateur": "Administrator",
    "rôle": "role", "utilisateur": "user", "Un technicien appartient à un site.":
    "A technician belongs to a site.", "Réception des examens": "Study reception",
    "Accepté": "Accepted", "Déjà reçu (doublon ignoré)": "Already received (duplicate ignored)",
    "Refusé": "Refused", "Comptes rendus": "Reports", "résultats": "findings",
    "conclusion": "conclusion", "compte rendu": "report",
    "Prenez d'abord cet examen en lecture.": "Claim this study for reading first.",
    "Ce compte rendu est déjà signé.": "This report is already signed.",
    "Une conclusion est nécessaire pour signer.": "A conclusion is needed to sign.",
    "Examens": "Studies", "Fichiers DICOM de l'examen": "DICOM files of the study",
    "Indication clinique": "Clinical indication", "Priorité": "Priority", "Résultats": "Findings",
    "Conclusion": "Conclusion", "Routine": "Routine", "Urgent": "Urgent",
    "Extrême urgence (STAT)": "STAT", "Reçu": "Received", "Pré-lu par l'IA": "AI pre-read",
    "En attente de lecture": "Waiting to be read", "En lecture": "Being read",
    "Compte rendu signé": "Report signed", "Compte rendu remis au site": "Report delivered to site",
    "Envoi par le site": "Sent by the site",
    "Arrivé directement dans l'archive (C-STORE, pair)": "Arrived in the archive directly (C-STORE, peer)",
    "patient": "patient", "identifiant patient": "patient ID", "sexe": "sex",
    "date de naissance": "birth date", "numéro d'accès": "accession number", "modalité": "modality",
    "région anatomique": "body part", "description": "description", "date de l'examen": "study date",
    "établissement": "institution", "indication clinique": "clinical indication",
    "priorité": "priority", "statut": "status", "radiologue": "radiologist", "examen": "study",
    "ID": "ID", "né(e) le": "born", "Site": "Site", "Statut": "Status", "Indication": "Indication",
    "Image": "Image", "Pas d'image.": "No image.", "Examen": "Study", "Compte rendu": "Report",
    "brouillon": "draft", "Signé par": "Signed by", "Télécharger le PDF": "Download the PDF",
    "Compte rendu pas encore disponible.": "Report not available yet.",
    "Prendre en lecture": "Claim for reading", "Images": "Images", "Historique": "History",
    "Envoyer un nouvel examen": "Send a new study", "Patient": "Patient", "Reçu le": "Received on",
    "Aucun examen pour l'instant.": "No study yet.", "Envoyer un examen": "Send a study",
    "Envoyer": "Send",
    "Chaque fichier reçoit un verdict : accepté, ou refusé avec la raison.":
    "Each file gets a verdict: accepted, or refused with the reason.",
    "Résultat de l'envoi": "Upload result", "%(accepted)s fichier(s) accepté(s)":
    "%(accepted)s file(s) accepted", "%(refused)s refusé(s)": "%(refused)s refused",
    "Fichier": "File", "Verdict": "Verdict", "Raison": "Reason",
    "Envoyer un autre examen": "Send another study", "Liste de travail": "Worklist",
    "Lecture": "Reading", "Enregistrer le brouillon": "Save draft", "Signer et envoyer": "Sign and send",
    "Attente": "Waiting", "Reprendre": "Resume", "Lire": "Read",
    "Aucun examen en attente.": "No study waiting.",
    "Cet examen est déjà lu par un confrère.": "A colleague is already reading this study.",
    "Compte rendu signé et envoyé au site.": "Report signed and sent to the site.",
    "Brouillon enregistré.": "Draft saved.", "Français": "Français", "English": "English",
    "Déconnexion": "Log out", "Connexion": "Log in",
    "Identifiant ou mot de passe incorrect.": "Wrong username or password.",
    "Identifiant": "Username", "Mot de passe": "Password", "Se connecter": "Log in",
    "Relancer la pré-lecture avec les modèles actuels": "Re-run the pre-read with the current models",
    "Pré-lecture relancée (l'historique est conservé).": "Pre-read re-run (history kept).",
    "En cours": "Running", "Analysé": "Scored", "Hors du champ du modèle": "Outside the model's scope",
    "Pré-lecture échouée": "Pre-read failed", "IA": "AI", "IA : non analysé": "AI: not analysed",
    "pré-lecture échouée": "pre-read failed",
    "modèle de démonstration, pas pour usage clinique": "demo model, not for clinical use",
    "Afficher les zones et la carte de chaleur de l'IA": "Show the AI's boxes and heatmap",
    "urgence IA": "AI urgency", "alerte critique IA": "AI critical flag", "IA %(u).2f": "AI %(u).2f",
    "IA —": "AI —", "délai restant %(d)s": "%(d)s left", "en retard de %(d)s": "%(d)s overdue",
    "score %(s).2f": "score %(s).2f",
    "Texte proposé par l'IA : relisez-le et corrigez-le avant de signer.":
    "Text proposed by the AI: review and correct it before signing.",
    "Pourquoi ce rang": "Why this rank",
    "En cours de réception": "Receiving", "Reçu, en cours de vérification": "Received, being checked",
    "Traité": "Processed", "Expiré": "Expired", "Annulé": "Cancelled",
    "Lot de fichiers DICOM": "Bundle of DICOM files", "Aperçu": "Preview",
    "Photo ou scan d'un film": "Photo or scan of a film",
    "Utilisez le formulaire simple": "Use the simple form", "Envois interrompus": "Interrupted uploads",
    "Que voulez-vous envoyer ?": "What do you want to send?",
    "Photo ou scan d'un film (JPEG, PNG)": "Photo or scan of a film (JPEG, PNG)",
    "… ou un dossier entier (CD)": "… or a whole folder (CD)", "Photo du film": "Photo of the film",
    "Nom du patient (NOM^Prénom)": "Patient name (LAST^First)", "Sexe": "Sex", "Féminin": "Female",
    "Masculin": "Male", "Autre": "Other", "scanner": "CT", "mammographie": "mammography",
    "échographie": "ultrasound", "Formulaire simple (sans reprise)": "Simple form (no resume)",
    "Métadonnées d'envoi illisibles.": "Unreadable upload metadata.",
    "La taille du fichier doit être connue.": "The file size must be known.",
    "Taille de fichier manquante.": "Missing file size.", "Envoi inconnu.": "Unknown upload.",
    "Envoi expiré ou annulé : recommencez ce fichier.": "Upload expired or cancelled: send this file again.",
    "Type de contenu attendu : application/offset+octet-stream.":
    "Expected content type: application/offset+octet-stream.",
    "Position manquante.": "Missing offset.",
    "Algorithme de somme de contrôle non pris en charge.": "Unsupported checksum algorithm.",
    "Somme de contrôle illisible.": "Unreadable checksum.", "Manifeste illisible.": "Unreadable manifest.",
    "Choisissez au moins un fichier.": "Choose at least one file.",
    "Calcul de l'empreinte…": "Computing the checksum…",
    "Liaison coupée : nouvel essai…": "Link down: trying again…",
    "Liaison coupée : l'envoi reprendra tout seul dès le retour du réseau.":
    "Link down: the upload will resume by itself when the network is back.",
    "Reçu, vérification au centre…": "Received, being checked at the centre…",
    "Examen en cours de réception au centre…": "Study being received at the centre…",
    "Examen reçu au centre :": "Study received at the centre:",
    "Reprise de l'envoi interrompu.": "Resuming the interrupted upload.", "Abandonner": "Give up",
    "commencé le": "started on", "Formulaire simple": "Simple form",
    "Compression avec perte": "Lossy compression",
}


def main() -> None:
    text = PO.read_text()
    text = text.replace("#, fuzzy\n", "", 1)

    def fill(match: re.Match) -> str:
        msgid = match.group(1)
        english = EN.get(msgid.replace('\\"', '"'))
        return f'msgid "{msgid}"\nmsgstr "{english.replace(chr(34), chr(92) + chr(34))}"' if english \
            else match.group(0)

    text = re.sub(r'msgid "((?:[^"\\]|\\.)+)"\nmsgstr ""', fill, text)
    PO.write_text(text)


if __name__ == "__main__":
    main()
