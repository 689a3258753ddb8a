"""Train an intent classifier on the examples staff manage in the admin."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from chatsite.exceptions import ApplicationError
from nlu.models import NluModel
from nlu.training import nlu_model_promote, nlu_model_train


class Command(BaseCommand):
    help = (
        "Train, evaluate (stratified cross-validation) and store a new intent classifier from the "
        "active intents' examples. It does not serve until promoted (--promote, or the admin)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--promote", action="store_true", help="serve the new model once it is trained"
        )
        parser.add_argument(
            "--if-none-serving",
            action="store_true",
            help="do nothing when a model already serves (scripts/run uses this)",
        )

    def handle(self, *args: Any, promote: bool, if_none_serving: bool, **options: Any) -> None:
        """Train with a progress bar, print the evaluation, promote if asked."""
        if if_none_serving and NluModel.objects.filter(is_serving=True).exists():
            self.stdout.write("A model already serves: nothing to do.")
            return
        bars: dict[str, tqdm] = {}

        def progress(stage: str, done: int, total: int) -> None:
            bar = bars.get(stage)
            if bar is None:
                for other in bars.values():
                    other.close()
                bar = bars[stage] = tqdm(
                    total=total, desc=stage, unit="step", file=self.stderr._out, leave=True
                )
            bar.n = done
            bar.refresh()

        try:
            model = nlu_model_train(progress=progress)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        finally:
            for bar in bars.values():
                bar.close()
        metrics = model.metrics
        self.stdout.write(
            f"{model}: {model.recipe}; {model.example_count} examples, {model.intent_count} "
            f"intents, {model.training_seconds:.1f} s"
        )
        if "accuracy" in metrics:
            self.stdout.write(
                f"cross-validated ({metrics.get('folds')} folds): accuracy "
                f"{metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}"
            )
        if promote:
            nlu_model_promote(model)
            self.stdout.write(self.style.SUCCESS(f"{model} now serves."))
        else:
            self.stdout.write(
                self.style.SUCCESS(f"Stored {model}; promote it in the admin to serve it.")
            )
