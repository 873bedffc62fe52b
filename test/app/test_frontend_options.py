"""The regressor form's built-in options (used when /api/v1/models cannot be
read) are exactly the categories the model was trained on."""

import re
from pathlib import Path

from training import generate_data

FORM = Path(__file__).resolve().parents[2] / "nginx" / "html" / "regressor.html"


def form_options(field):
    select = re.search(rf'<select id="{field}"[^>]*>(.*?)</select>', FORM.read_text(), re.S)
    assert select, f"no <select> for {field} in {FORM}"
    return re.findall(r"<option[^>]*>([^<]+)</option>", select.group(1))


def test_fallback_options_match_the_training_categories():
    assert sorted(form_options("CustomerType")) == sorted(generate_data.CUSTOMER_TYPES)
    assert sorted(form_options("BranchSubCounty")) == sorted(generate_data.BRANCHES)
    assert sorted(form_options("ProductCategoryName")) == sorted(generate_data.CATEGORY_MARGINS)
