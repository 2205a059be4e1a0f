# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local AWS endpoint: moto's server plus the EC2 behaviour bakery.ami relies on."""
from __future__ import annotations
