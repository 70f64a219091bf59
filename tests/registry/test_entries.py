"""Reporting an entry: the web form, its refusals, re-reports, roles, amounts and the
days-past-due band (product.md, "The life of an entry", steps 1–4)."""

import datetime
import html
import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone, translation
from stdnum.cn import ric as stdnum_ric

from registry import services
from registry.importing.rows import parse_row
from registry.models import Entry, Evidence, Subject, dpd_band
from registry.uploads_for_tests import PDF if False else None  # noqa: F401  (placeholder removed below)
