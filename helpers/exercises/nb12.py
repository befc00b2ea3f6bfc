"""Checkers for the homework (notebook 12): one per question, each against what MLflow knows.

Except for the server option of question 4, the expected answers are not stored here: each
checker works its answer out (from the installed MLflow, scikit-learn's defaults, the runs in
the tracking store, or the data of the learner's cohort), so the homework stays right when the
data or the libraries change, with the real TLC data too (``COURSE_DATA_SOURCE=tlc``), and for
every cohort of the module's homework (:data:`COHORTS`), whose data and numbers differ.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import mlflow
from sklearn.ensemble import RandomForestRegressor
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import Ridge
from sklearn.metrics import root_mean_squared_error

from helpers.data import load_trips, prepare_features
from helpers.exercises import Hint, checker, close_to, newest_run, require

EXPERIMENT = "nyc-taxi-homework"
MODEL = "nyc-taxi-homework"
RMSE_TOLERANCE = 0.1
"""Module-style options for an RMSE are further apart than this: the nearest one is right."""

MONTHS = {"train": 1, "val": 2, "test": 3}
"""Every cohort trains on January, validates on February and tests on March of its year."""
FEATURES = ["PU_DO", "trip_distance"]


@dataclass(frozen=True)
class Cohort:
    """One cohort's homework: which taxis, which year."""

    name: str
    colour: str
    year: int
    homework: str

    def __str__(self) -> str:
        return (
            f"cohort {self.name!r} ({self.homework}): {self.colour} taxis, January {self.year} "
            f"(train), February {self.year} (validation) and March {self.year} (test)"
        )


COHORTS = {
    "original": Cohort("original", "green", 2021, "the module's first homework, as in the videos"),
    "2024": Cohort("2024", "green", 2023, "the 2024 cohort's homework"),
    "2025": Cohort("2025", "yellow", 2023, "the 2025 cohort's homework"),
}
"""The module's homework changed with each cohort; each used other taxi data."""
DEFAULT_COHORT = "original"
_chosen = COHORTS[DEFAULT_COHORT]


def choose_cohort(name: object) -> Cohort:
    """Make ``name`` the cohort whose data the checkers use, say what it uses, return it."""
    global _chosen
    key = str(name).strip() if isinstance(name, str | int) else name
    if key not in COHORTS:
        raise ValueError(
            f"Unknown cohort {name!r}: choose {', '.join(map(repr, COHORTS))} (see the text above "
            "the cell)."
        )
    _chosen = COHORTS[key]
    print(f"Using {_chosen}.")
    return _chosen


def chosen_cohort() -> Cohort:
    """The cohort the checkers use: the one chosen last, else the default."""
    return _chosen


def cohort_data(cohort: Cohort, split: str) -> tuple[dict, dict]:
    """The trips of January and of ``split`` for ``cohort``, and each one's ``(X, y)`` made
    as the homework's question 2 makes them (a DictVectorizer fitted on January).

    Kept for the next check while the data settings stay the same: a learner checks an
    answer several times, and a month of real yellow trips takes a while to prepare.
    """
    settings = tuple(os.environ.get(name) for name in ("COURSE_DATA_SOURCE", "COURSE_SAMPLE_TRIPS"))
    return _cohort_data(cohort, split, settings)


@functools.lru_cache(maxsize=2)
def _cohort_data(cohort: Cohort, split: str, settings: tuple) -> tuple[dict, dict]:
    frames = {
        name: prepare_features(load_trips(cohort.colour, cohort.year, MONTHS[name]))
        for name in ("train", split)
    }
    dv = DictVectorizer().fit(frames["train"][FEATURES].to_dict(orient="records"))
    matrices = {
        name: (dv.transform(frame[FEATURES].to_dict(orient="records")), frame["duration"].values)
        for name, frame in frames.items()
    }
    return frames, matrices


def _newest_run(name: str) -> mlflow.entities.Run:
    found = newest_run(name, experiment_names=[EXPERIMENT])
    if found is None:
        raise Hint(f"no run named `{name}` in `{EXPERIMENT}` yet: do that step first.")
    return found


def _number(answer: object, question: int) -> float:
    require(answer is not None, f"put your answer in `answer_{question}` and run the cell.")
    try:
        return float(answer)
    except (TypeError, ValueError):
        raise Hint(f"`answer_{question}` should be a number, not {answer!r}.") from None


@checker
def check_question_1(answer: str | None) -> str:
    """The MLflow version, as `mlflow --version` or `mlflow.__version__` shows it."""
    require(answer, "put the version (a string such as '1.2.3') in `answer_1`.")
    require(
        str(answer).strip() == mlflow.__version__,
        "that is not the version this environment runs: ask `mlflow.__version__`, or "
        "`mlflow --version` in a terminal with the course environment active.",
    )
    return "that is the MLflow this environment runs."


@checker
def check_question_2(answer: int | None) -> str:
    """How many artifacts the newest `preprocess` run holds under `preprocessed/`."""
    count = _number(answer, 2)
    run = _newest_run("preprocess")
    stored = mlflow.MlflowClient().list_artifacts(run.info.run_id, "preprocessed")
    require(stored, "the `preprocess` run holds no folder `preprocessed`: log the folder there.")
    require(
        count == len(stored),
        "count again what the run stores, not what you meant to save: list the run's "
        "artifacts under `preprocessed` with MlflowClient().list_artifacts.",
    )
    return f"the run holds {len(stored)} artifacts."


@checker
def check_question_3(answer: int | None) -> str:
    """The ``min_samples_split`` autologging recorded, read from the newest run that has it."""
    value = _number(answer, 3)
    recorded = [
        (key, run)
        for run in mlflow.search_runs(
            experiment_names=[EXPERIMENT],
            order_by=["attributes.start_time DESC"],
            max_results=50,
            output_format="list",
        )
        for key in run.data.params
        if key.endswith("min_samples_split")
    ]
    require(
        recorded,
        f"no run in `{EXPERIMENT}` has an autologged `min_samples_split` yet: train the forest "
        "with `mlflow.sklearn.autolog()` on, inside a run, then read the run's parameters.",
    )
    key, run = recorded[0]
    require(
        value == float(run.data.params[key]),
        "read the parameter from the autologged run: in a pipeline its name is "
        "`<step>__min_samples_split`.",
    )
    default = RandomForestRegressor().get_params()["min_samples_split"]
    require(
        value == default,
        f"run {run.info.run_name!r} set `min_samples_split` itself: train exactly the forest "
        "the question gives, and read what autologging recorded for it.",
    )
    return "autologging recorded the default, since the code never set it."


@checker
def check_question_4(answer: str | None) -> str:
    """The `mlflow server` option for where a server stores the artifacts it proxies."""
    require(answer, "put the option's name in `answer_4`, for example 'some-option'.")
    from mlflow.cli import server as server_command  # here: MLflow's command line is slow to import

    options = {o.lstrip("-") for p in server_command.params for o in p.opts}
    flag = str(answer).strip().lstrip("-")
    require(
        flag in options, f"`mlflow server` has no option `--{flag}`: see `mlflow server --help`."
    )
    require(
        flag == "artifacts-destination",
        f"`--{flag}` exists but does something else: read its help text, and look for the "
        "option about where *proxied* artifacts are stored.",
    )
    return "that is where a server stores the artifacts it receives (proxied)."


@checker
def check_question_5(answer: float | None) -> str:
    """The best validation RMSE among the newest tuning run's trials, to the options' digits."""
    value = _number(answer, 5)
    tuning = _newest_run("ridge-tuning")
    trials = mlflow.search_runs(
        experiment_names=[EXPERIMENT],
        filter_string=f"tags.mlflow.parentRunId = '{tuning.info.run_id}'",
        order_by=["metrics.rmse ASC"],
        max_results=1,
    )
    require(len(trials), "the `ridge-tuning` run has no trials: log each one as a child run.")
    best = trials["metrics.rmse"].iloc[0]
    require(
        close_to(value, best, RMSE_TOLERANCE),
        "not the best trial's RMSE: search the tuning run's child runs "
        "(tags.mlflow.parentRunId) sorted by metrics.rmse.",
    )
    alpha = trials.get("params.alpha")
    require(
        alpha is not None and alpha.notna().iloc[0],
        "the best trial logged no `alpha`: log each trial's `alpha` with mlflow.log_param, "
        "so that the run says which model it scored.",
    )
    cohort = chosen_cohort()
    _, data = cohort_data(cohort, "val")
    model = Ridge(alpha=float(alpha.iloc[0]), tol=1e-8).fit(*data["train"])
    rmse = root_mean_squared_error(data["val"][1], model.predict(data["val"][0]))
    require(
        close_to(value, rmse, RMSE_TOLERANCE),
        f"the best trial's `alpha` does not give that RMSE on February {cohort.year} of cohort "
        f"{cohort.name!r} ({cohort.colour} taxis): was the search run on another cohort's "
        "data? Run questions 2 and 5 again after choosing your cohort.",
    )
    return "the best trial's validation RMSE, as the store has it."


@checker
def check_question_6(answer: float | None) -> str:
    """The champion's RMSE on March, recomputed here by loading the model by its alias."""
    value = _number(answer, 6)
    try:
        champion = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    except mlflow.exceptions.MlflowException:
        raise Hint(f"no `{MODEL}` model with a `champion` alias yet: register it first.") from None
    cohort = chosen_cohort()
    rmse = _rmse_on_march(champion, cohort)
    require(
        close_to(value, rmse, RMSE_TOLERANCE),
        f"not the champion's RMSE on March {cohort.year} of cohort {cohort.name!r} "
        f"({cohort.colour} taxis): load it by alias (models:/<name>@champion) and score "
        "your cohort's test month, not its validation one.",
    )
    return "the champion's RMSE on March, loaded by its alias."


def _rmse_on_march(champion: mlflow.pyfunc.PyFuncModel, cohort: Cohort) -> float:
    """The champion's RMSE on the cohort's March, given the input it was logged with.

    A model logged on DictVectorizer's matrix (as the solution does) gets that matrix; a
    pipeline logged on a DataFrame (as notebook 07 teaches) gets the columns its signature names.
    """
    frames, data = cohort_data(cohort, "test")
    test = frames["test"]
    schema = champion.metadata.get_input_schema()
    if schema is not None and schema.has_input_names():
        columns = schema.input_names()
        missing = sorted(set(columns) - set(test.columns))
        require(
            not missing,
            f"the champion asks for columns the trips do not have ({missing}): register a model "
            "trained on the homework's features.",
        )
        inputs = test[columns]
    else:
        inputs = data["test"][0]
    try:
        predictions = champion.predict(inputs)
    except Exception as error:  # noqa: BLE001 - any failure becomes a hint, not a traceback
        raise Hint(
            f"the champion could not predict March's trips ({type(error).__name__}): register a "
            "model trained on `PU_DO` and `trip_distance`, with an input example."
        ) from None
    return root_mean_squared_error(test["duration"].values, predictions)
