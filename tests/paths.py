"""Where the shared test images live (never copied into the repository)."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TESTDATA = Path(os.environ.get("JOLIBA_TESTDATA", REPO.parent / "shared" / "testdata"))
EDGE_CASES = TESTDATA / "edge_cases"
REAL_OTHER = TESTDATA / "real_other"
REAL_CXR = TESTDATA / "real_cxr"
CT_HEAD = REAL_OTHER / "CT_head_series_GE_gantry-tilt_dcm_qa_ct"
RF_SHOULDER = REAL_OTHER / "RF_shoulder_orthanc" / "KarstenHilbertRF.dcm"
ARTIFACTS = Path(os.environ.get("JOLIBA_TEST_ARTIFACTS", REPO / "test-artifacts"))
