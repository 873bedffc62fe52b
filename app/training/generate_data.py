"""Synthetic, seeded training data for the two served models.

The original data sets are not public, so both are generated here with
documented relationships plus noise, which makes held-out metrics
meaningful (a model that learns nothing scores visibly worse).

Customer churn (classifier; target ``churn`` 0/1)
    monthly_fee   number  0..300, uniform
    customer_age  integer 18..100, uniform
    support_calls integer 0..20, Poisson(2)
    churn = 1 when  0.035*(fee - 140) + 0.9*(calls - 2) - 0.06*(age - 45) + noise > 0,
    noise ~ Logistic(0, 0.75): churn rises with the fee and support calls,
    falls with age.

Sales (regressor; target ``PercentageProfitPerUnit``, percent)
    CustomerType, BranchSubCounty (Nairobi), ProductCategoryName (food),
    QuantityOrdered integer 1..50 (larger for business buyers),
    PaymentDate 2023-01-01..2028-12-31, uniform.
    profit = category margin + customer-type adjustment + branch adjustment
             - quantity discount (0.15 per unit, -2.5 from 10 units, -3 more from 25)
             + weekday effect (Friday/Saturday +3, Sunday +1.5, Monday -1)
             + 2.5*cos(2*pi*(month - 12)/12)   (December peak, June trough)
             - 0.4 per year since 2023         (rising costs)
             + noise ~ Normal(0, 1.5), rounded to 2 decimals.

The field specs below are the data's domain: training writes them into the
model cards (models/NAME/model.json) and the API validates requests against
them.

    python -m training.generate_data --out DIR [--seed 42]
"""

import argparse
import csv
import datetime as dt
import hashlib
import io
import math
import os
from dataclasses import dataclass

import numpy as np

CHURN_ROWS = 8000
SALES_ROWS = 30000

FIRST_DATE = dt.date(2023, 1, 1)
LAST_DATE = dt.date(2028, 12, 31)

# name: (share of customers, mean quantity ordered, profit adjustment in points)
CUSTOMER_TYPES = {
    "Business": (0.30, 8, 0.0),
    "Individual": (0.45, 2, 3.0),
    "Institution": (0.10, 15, -3.0),
    "Wholesale": (0.15, 25, -6.0),
}
# Nairobi sub-counties with a branch: profit adjustment in points.
BRANCHES = {
    "Embakasi East": -2.0,
    "Kasarani": -0.5,
    "Kilimani": 2.0,
    "Langata": 1.0,
    "Makadara": -1.5,
    "Roysambu": 0.0,
    "Starehe": -1.0,
    "Westlands": 2.5,
}
# Food category: base margin in percent.
CATEGORY_MARGINS = {
    "Beverages": 42.0,
    "Desserts": 36.0,
    "Fast Food": 30.0,
    "Meat-Based Dishes": 20.0,
    "Seafood Dishes": 16.0,
    "Traditional Dishes": 26.0,
    "Vegetarian Dishes": 28.0,
}
# Monday = 0 ... Sunday = 6
WEEKDAY_EFFECTS = (-1.0, 0.0, 0.0, 0.5, 3.0, 3.0, 1.5)


def label_encoding(values):
    """Sorted label encoding, as scikit-learn's LabelEncoder assigns it."""
    return {value: code for code, value in enumerate(sorted(values))}


CHURN_INPUTS = (
    {"name": "monthly_fee", "type": "number", "minimum": 0, "maximum": 300,
     "description": "Monthly subscription fee.", "example": 60},
    {"name": "customer_age", "type": "integer", "minimum": 18, "maximum": 100,
     "description": "Age of the customer in years.", "example": 30},
    {"name": "support_calls", "type": "integer", "minimum": 0, "maximum": 20,
     "description": "Calls to customer support in the last period.", "example": 1},
)
SALES_INPUTS = (
    {"name": "CustomerType", "type": "category", "encoding": label_encoding(CUSTOMER_TYPES),
     "description": "Kind of customer.", "example": "Business"},
    {"name": "BranchSubCounty", "type": "category", "encoding": label_encoding(BRANCHES),
     "description": "Nairobi sub-county of the selling branch.", "example": "Kilimani"},
    {"name": "ProductCategoryName", "type": "category", "encoding": label_encoding(CATEGORY_MARGINS),
     "description": "Food category of the product.", "example": "Meat-Based Dishes"},
    {"name": "QuantityOrdered", "type": "integer", "minimum": 1, "maximum": 50,
     "description": "Units ordered.", "example": 8},
    {"name": "PaymentDate", "type": "date", "minimum": FIRST_DATE.isoformat(),
     "maximum": LAST_DATE.isoformat(), "description": "Date of payment.", "example": "2027-11-13"},
)


@dataclass(frozen=True)
class Dataset:
    name: str
    inputs: tuple  # field specs, in feature order
    columns: dict  # input name -> list of values (plain Python types)
    target_name: str
    target: list

    def __len__(self):
        return len(self.target)

    def records(self):
        """The inputs of every row as a request-like dict."""
        names = [spec["name"] for spec in self.inputs]
        rows = zip(*(self.columns[name] for name in names), strict=True)
        return [dict(zip(names, values, strict=True)) for values in rows]

    def csv_bytes(self):
        """Canonical CSV of the data set (its SHA-256 identifies the training data)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        names = [spec["name"] for spec in self.inputs]
        writer.writerow([*names, self.target_name])
        for row in zip(*(self.columns[name] for name in names), self.target, strict=True):
            writer.writerow([repr(v) if isinstance(v, float) else str(v) for v in row])
        return out.getvalue().encode("utf-8")

    def sha256(self):
        return hashlib.sha256(self.csv_bytes()).hexdigest()


def generate_churn(rng, rows=CHURN_ROWS):
    fee = np.round(rng.uniform(0.0, 300.0, rows), 2)
    age = rng.integers(18, 101, rows)
    calls = np.minimum(rng.poisson(2.0, rows), 20)
    score = 0.035 * (fee - 140.0) + 0.9 * (calls - 2) - 0.06 * (age - 45)
    churn = (score + rng.logistic(0.0, 0.75, rows) > 0).astype(np.int64)
    return Dataset(
        name="customer-churn",
        inputs=CHURN_INPUTS,
        columns={
            "monthly_fee": fee.tolist(),
            "customer_age": age.tolist(),
            "support_calls": calls.tolist(),
        },
        target_name="churn",
        target=churn.tolist(),
    )


def generate_sales(rng, rows=SALES_ROWS):
    customer_types = list(CUSTOMER_TYPES)
    type_index = rng.choice(len(customer_types), size=rows, p=[v[0] for v in CUSTOMER_TYPES.values()])
    branch_index = rng.integers(0, len(BRANCHES), rows)
    category_index = rng.integers(0, len(CATEGORY_MARGINS), rows)
    mean_quantity = np.array([v[1] for v in CUSTOMER_TYPES.values()])[type_index]
    quantity = np.clip(1 + rng.poisson(mean_quantity - 1), 1, 50)
    day_offsets = rng.integers(0, (LAST_DATE - FIRST_DATE).days + 1, rows)
    noise = rng.normal(0.0, 1.5, rows)

    dates = [FIRST_DATE + dt.timedelta(days=int(offset)) for offset in day_offsets]
    weekday = np.array([date.weekday() for date in dates])
    month = np.array([date.month for date in dates])
    year = np.array([date.year for date in dates])

    profit = (
        np.array(list(CATEGORY_MARGINS.values()))[category_index]
        + np.array([v[2] for v in CUSTOMER_TYPES.values()])[type_index]
        + np.array(list(BRANCHES.values()))[branch_index]
        - (0.15 * (quantity - 1) + 2.5 * (quantity >= 10) + 3.0 * (quantity >= 25))
        + np.array(WEEKDAY_EFFECTS)[weekday]
        + 2.5 * np.cos(2 * math.pi * (month - 12) / 12)
        - 0.4 * (year - FIRST_DATE.year)
        + noise
    )
    branches, categories = list(BRANCHES), list(CATEGORY_MARGINS)
    return Dataset(
        name="sales",
        inputs=SALES_INPUTS,
        columns={
            "CustomerType": [customer_types[i] for i in type_index],
            "BranchSubCounty": [branches[i] for i in branch_index],
            "ProductCategoryName": [categories[i] for i in category_index],
            "QuantityOrdered": quantity.tolist(),
            "PaymentDate": [date.isoformat() for date in dates],
        },
        target_name="PercentageProfitPerUnit",
        target=np.round(profit, 2).tolist(),
    )


def generate_all(seed):
    """Both data sets, each from its own stream of the seed."""
    churn_seed, sales_seed = np.random.SeedSequence(seed).spawn(2)
    return generate_churn(np.random.default_rng(churn_seed)), generate_sales(np.random.default_rng(sales_seed))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write the synthetic training data sets as CSV.")
    parser.add_argument("--out", required=True, help="directory to write churn.csv and sales.csv to")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    for dataset, file_name in zip(generate_all(args.seed), ("churn.csv", "sales.csv"), strict=True):
        with open(os.path.join(args.out, file_name), "wb") as file:
            file.write(dataset.csv_bytes())
        print(f"{file_name}: {len(dataset)} rows, sha256 {dataset.sha256()}")


if __name__ == "__main__":
    main()
