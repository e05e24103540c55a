"""The first report templates (admins edit them afterwards): chest radiograph, head CT,
abdominal CT, and a generic one. Conclusions are left empty on purpose: a template never
proposes a normal conclusion the radiologist might sign without writing it."""

from django.db import migrations

TEMPLATES = [
    {
        "code": "cr-dx-thorax",
        "name_fr": "Radiographie thoracique",
        "name_en": "Chest radiograph",
        "modalities": "CR,DX",
        "body_parts": "CHEST,THORAX,LUNG,POUMON",
        "technique_fr": "Radiographie thoracique de face, en incidence postéro-antérieure, debout, en inspiration.",
        "technique_en": "Frontal chest radiograph, postero-anterior projection, standing, in inspiration.",
        "findings_fr": (
            "Parenchyme pulmonaire : \n"
            "Plèvre : \n"
            "Médiastin et silhouette cardiaque : \n"
            "Cadre osseux et parties molles : "
        ),
        "findings_en": (
            "Lungs: \n"
            "Pleura: \n"
            "Mediastinum and cardiac silhouette: \n"
            "Bones and soft tissues: "
        ),
    },
    {
        "code": "ct-tete",
        "name_fr": "Scanner cérébral",
        "name_en": "Head CT",
        "modalities": "CT",
        "body_parts": "HEAD,BRAIN,SKULL,CRANE,TETE",
        "technique_fr": "Scanner cérébral en coupes axiales, sans injection de produit de contraste.",
        "technique_en": "Axial non-contrast CT of the head.",
        "findings_fr": (
            "Parenchyme cérébral : \n"
            "Espaces extra-axiaux (hématome sous-dural, extradural) : \n"
            "Système ventriculaire et ligne médiane : \n"
            "Fosse postérieure : \n"
            "Voûte et base du crâne : "
        ),
        "findings_en": (
            "Brain parenchyma: \n"
            "Extra-axial spaces (subdural, extradural haematoma): \n"
            "Ventricles and midline: \n"
            "Posterior fossa: \n"
            "Skull vault and base: "
        ),
    },
    {
        "code": "ct-abdomen",
        "name_fr": "Scanner abdomino-pelvien",
        "name_en": "Abdominal CT",
        "modalities": "CT",
        "body_parts": "ABDOMEN,ABDOMENPELVIS,PELVIS,ABDOMEN_PELVIS",
        "technique_fr": "Scanner abdomino-pelvien en coupes axiales, avec injection de produit de contraste iodé au temps portal.",
        "technique_en": "Axial CT of the abdomen and pelvis, with iodinated contrast at the portal venous phase.",
        "findings_fr": (
            "Foie, voies biliaires : \n"
            "Pancréas, rate : \n"
            "Reins et voies urinaires : \n"
            "Tube digestif, péritoine : \n"
            "Vaisseaux, ganglions : \n"
            "Bases pulmonaires et squelette : "
        ),
        "findings_en": (
            "Liver, biliary tract: \n"
            "Pancreas, spleen: \n"
            "Kidneys and urinary tract: \n"
            "Bowel, peritoneum: \n"
            "Vessels, lymph nodes: \n"
            "Lung bases and skeleton: "
        ),
    },
    {
        "code": "generique",
        "name_fr": "Compte rendu générique",
        "name_en": "Generic report",
        "modalities": "",
        "body_parts": "",
        "technique_fr": "",
        "technique_en": "",
        "findings_fr": "",
        "findings_en": "",
    },
]


def add_templates(apps, schema_editor):
    ReportTemplate = apps.get_model("reports", "ReportTemplate")
    for fields in TEMPLATES:
        ReportTemplate.objects.update_or_create(code=fields["code"], defaults=fields)


def remove_templates(apps, schema_editor):
    apps.get_model("reports", "ReportTemplate").objects.filter(code__in=[t["code"] for t in TEMPLATES]).delete()


class Migration(migrations.Migration):
    dependencies = [("reports", "0002_versions_templates_exports")]

    operations = [migrations.RunPython(add_templates, remove_templates)]
