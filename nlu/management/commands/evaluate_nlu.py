"""Score the intent-classifier recipe on a labelled train/test split (e.g. the public sets)."""

from __future__ import annotations

import csv
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from chatsite.exceptions import ApplicationError
from nlu.classifier.evaluate import AUTO, evaluate_split, load_examples
from nlu.classifier.metrics import top_confusions
from nlu.classifier.model import RECIPES


class Command(BaseCommand):
    help = (
        "Train on --train, score --test: accuracy, macro-F1, out-of-scope recall, calibration "
        "at 0.7, top confusions and timings. Files are JSON Lines or CSV with text,intent."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--train", type=Path, required=True)
        parser.add_argument("--test", type=Path, required=True)
        parser.add_argument(
            "--oos-label",
            default=AUTO,
            help='the out-of-scope intent (default: "oos" or "out_of_scope" if present; '
            '"none" for no out-of-scope handling)',
        )
        parser.add_argument("--recipe", choices=sorted(RECIPES), default=None)
        parser.add_argument(
            "--folds",
            type=int,
            default=3,
            help="cross-validation on --train for the temperature and the out-of-scope "
            "threshold (0: skip)",
        )
        parser.add_argument("--confusion-csv", type=Path, help="write the full matrix here")
        parser.add_argument("--top", type=int, default=15, help="confusions to print")

    def handle(self, *args: Any, **options: Any) -> None:
        """Load both files, run evaluate_split with a progress bar, print the report."""
        try:
            train = load_examples(options["train"])
            test = load_examples(options["test"])
        except (OSError, ValueError, KeyError) as exc:
            raise CommandError(f"cannot read the examples: {exc}") from exc
        oos = None if options["oos_label"] == "none" else options["oos_label"]
        extra = {"recipe": RECIPES[options["recipe"]]} if options["recipe"] else {}
        bars: dict[str, tqdm] = {}

        def progress(stage: str, done: int, total: int) -> None:
            # One bar per stage, one stage at a time (as train_nlu does).
            if stage not in bars:
                for other in bars.values():
                    other.close()
                bars[stage] = tqdm(total=total, desc=stage, file=self.stderr._out)
            bars[stage].n = done
            bars[stage].refresh()

        try:
            result = evaluate_split(
                train, test, oos_label=oos, folds=options["folds"], progress=progress, **extra
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        finally:
            for bar in bars.values():
                bar.close()
        self.report(result, options["top"])
        if options["confusion_csv"]:
            write_confusion(options["confusion_csv"], result["confusion"])
            self.stdout.write(f"confusion matrix: {options['confusion_csv']}")

    def report(self, result: dict[str, Any], top: int) -> None:
        """The scores, then the worst confusions, then the costs."""
        out = self.stdout.write
        calibration = result["calibration"]
        out(f"recipe       {result['recipe']}")
        out(f"examples     train {result['train_examples']}, test {result['examples']}")
        out(f"accuracy     {result['accuracy']:.4f}")
        out(f"macro-F1     {result['macro_f1']:.4f}")
        if "oos_recall" in result:
            out(f"in-scope acc {result['in_scope_accuracy']:.4f}")
            out(
                f"OOS recall   {result['oos_recall']:.4f} (precision {result['oos_precision']:.4f}"
                f", threshold {result['oos_threshold']:.2f} tuned on train)"
            )
        out(
            f"confidence ≥ {calibration['threshold']}: {calibration['coverage']:.1%} of messages, "
            f"{calibration['precision']:.2%} right"
        )
        out("top confusions (true → predicted: count):")
        for truth, predicted, count in top_confusions(result["confusion"], top) or [("", "", 0)]:
            out(f"  {truth} → {predicted}: {count}" if count else "  none")
        out("timings:")
        for name, value in result["timings"].items():
            out(f"  {name}: {value:.3f}" if isinstance(value, float) else f"  {name}: {value}")


def write_confusion(path: Path, confusion: dict[str, Any]) -> None:
    """Rows are true intents, columns predicted ones, with labels in the first row and column."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true\\predicted", *confusion["labels"]])
        for label, row in zip(confusion["labels"], confusion["matrix"], strict=True):
            writer.writerow([label, *row])
