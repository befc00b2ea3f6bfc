"""The homework's checkers (notebook 13): each answer worked out from MLflow, never stored.

Each cohort of the module's homework asks its own questions on its own data: its checkers must
accept the answers of the cohort chosen, and refuse another cohort's.
"""

from __future__ import annotations

import functools
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import sklearn
from exercise_support import (  # noqa: F401
    ODD_INPUTS,
    correct,
    finished_run,
    hint,
    learner_store,
    verdict,
)
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import Ridge
from sklearn.metrics import root_mean_squared_error
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder

from helpers.data import load_trips, prepare_features
from helpers.exercises import nb13
from helpers.exercises.nb13 import (
    COHORTS,
    DEFAULT_COHORT,
    EXPERIMENT,
    MODEL,
    RMSE_TOLERANCE,
    ask,
    check_question_1,
    check_question_2,
    check_question_3,
    check_question_4,
    check_question_5,
    check_question_6,
    check_question_7,
    choose_cohort,
    chosen_cohort,
    cohort_data,
)

OTHER_COHORTS = [name for name in COHORTS if name != DEFAULT_COHORT]
OTHER_DATA = [n for n in OTHER_COHORTS if COHORTS[n].data_year != COHORTS[DEFAULT_COHORT].data_year]
"""The cohorts whose data differ from the default's (2024 and 2025 share theirs)."""


@pytest.fixture(autouse=True)
def default_cohort():
    """Every test starts, and leaves the checkers, on the default cohort."""
    assert chosen_cohort() == COHORTS[DEFAULT_COHORT]
    yield
    nb13._chosen = COHORTS[DEFAULT_COHORT]


@pytest.fixture
def homework(store):
    return mlflow.set_experiment(EXPERIMENT)


def test_the_cohorts_are_the_module_homeworks():
    """Data, target and question of each course step as each cohort's homework.md has them."""
    assert DEFAULT_COHORT == "2025"
    assert {name: (c.colour, c.data_year, c.target) for name, c in COHORTS.items()} == {
        "2022": ("green", 2021, "duration"),
        "2023": ("green", 2022, "tip_amount"),
        "2024": ("green", 2023, "duration"),
        "2025": ("green", 2023, "duration"),
    }
    asked = {
        name: {n: (q.number, q.kind) for n, q in c.questions.items()} for name, c in COHORTS.items()
    }
    assert asked["2022"] == {
        1: (1, "version"),
        2: (2, "files"),
        3: (3, "param_count"),
        4: (4, "server_option"),
        5: (5, "val_rmse"),
        6: (6, "test_rmse"),
    }
    assert asked["2023"] == {
        1: (1, "version"),
        2: (2, "dv_size"),
        3: (3, "max_depth"),
        5: (4, "val_rmse"),
        6: (5, "test_rmse"),
        7: (6, "metadata"),
    }
    assert (
        asked["2024"]
        == asked["2025"]
        == {
            1: (1, "version"),
            2: (2, "files"),
            3: (3, "min_samples_split"),
            4: (4, "server_option"),
            5: (5, "val_rmse"),
            6: (6, "test_rmse"),
        }
    )
    options = {
        name: (c.questions[5].options, c.questions[6].options) for name, c in COHORTS.items()
    }
    assert options["2022"] == (
        ("6.128", "6.628", "7.128", "7.628"),
        ("6.1", "6.55", "7.93", "15.1"),
    )
    assert options["2023"] == (
        ("1.85", "2.15", "2.45", "2.85"),
        ("1.885", "2.185", "2.555", "2.955"),
    )
    assert (
        options["2024"]
        == options["2025"]
        == (("4.817", "5.335", "5.818", "6.336"), ("5.060", "5.567", "6.061", "6.568"))
    )
    assert COHORTS["2022"].questions[3].options == ("19", "17", "10", "20")
    assert COHORTS["2023"].questions[2].options == ("54 kB", "154 kB", "54 MB", "154 MB")
    assert COHORTS["2023"].questions[7].options[-1] == "All the above answers are correct"
    years = (2022, 2023, 2024, 2025)
    homework = [f"cohorts/{y}/02-experiment-tracking/homework.md" for y in years]
    assert [c.homework for c in COHORTS.values()] == homework


def test_choosing_a_cohort_says_what_it_uses(capsys):
    assert choose_cohort("2023") == COHORTS["2023"] == chosen_cohort()
    assert capsys.readouterr().out == (
        "Using the 2023 cohort's homework (cohorts/2023/02-experiment-tracking/homework.md): "
        "green taxis, January 2022 (train), February 2022 (validation) and March 2022 (test); "
        "it predicts the tip in $.\n"
    )
    assert choose_cohort(2024) == COHORTS["2024"], "a year without quotes is understood"
    assert choose_cohort(" 2025 ") == COHORTS["2025"]
    assert "The same data and questions as 2024's." in capsys.readouterr().out
    for wrong in ("original", "yellow", None, 2025.0, "", True, "2021"):
        with pytest.raises(ValueError) as error:
            choose_cohort(wrong)
        assert str(error.value) == (
            f"Unknown cohort {wrong!r}: choose '2022', '2023', '2024', '2025', the year of your "
            "cohort (see the text above the cell)."
        )
    assert chosen_cohort() == COHORTS["2025"], "a refused name changes nothing"


def test_ask_prints_the_cohorts_own_question_or_says_whose_it_borrows(capsys):
    ask(3)
    assert capsys.readouterr().out == (
        "The 2025 homework, question 3:\nWhat is the value of the `min_samples_split` "
        "parameter:\nOptions: 2 / 4 / 8 / 10\n"
    )
    ask(7)
    out = capsys.readouterr().out
    assert out.startswith(
        "The 2025 homework does not ask this; the course asks it as the 2023 "
        "homework's question 6:\nWhat information does the model registry"
    )
    choose_cohort("2023")
    capsys.readouterr()
    ask(5)
    out = capsys.readouterr().out
    assert out.startswith("The 2023 homework, question 4:\nWhat's the best validation RMSE")
    assert "Options: 1.85 / 2.15 / 2.45 / 2.85\n" in out and "report yours" in out
    ask(4)
    assert capsys.readouterr().out.startswith(
        "The 2023 homework does not ask this; the course asks it as the 2024 homework's question 4"
    )
    choose_cohort("2022")
    capsys.readouterr()
    ask(3)
    assert "count what your run shows" in capsys.readouterr().out


def test_question_1_the_installed_version_only(capsys):
    assert correct(verdict(capsys, check_question_1, mlflow.__version__))
    assert hint(verdict(capsys, check_question_1, None), "put the version")
    out = verdict(capsys, check_question_1, "2.22.0")  # the videos' version
    assert hint(out, "not the version this environment runs")
    assert mlflow.__version__ not in out  # the hint never gives the answer
    assert hint(verdict(capsys, check_question_1, sklearn.__version__), "not the version")
    assert hint(verdict(capsys, check_question_1, f"mlflow {mlflow.__version__}"), "not the")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_question_1, odd)), odd


def preprocess(files: int) -> str:
    with mlflow.start_run(run_name="preprocess") as run:
        for number in range(files):
            mlflow.log_text("x", f"preprocessed/file-{number}.pkl")
    return run.info.run_id


def test_question_2_counts_what_the_newest_preprocess_run_stores(capsys, homework):
    assert hint(verdict(capsys, check_question_2, 4), "no run named `preprocess`")
    assert hint(verdict(capsys, check_question_2, None), "put your answer in `answer_2`")
    preprocess(3)
    preprocess(4)  # the newest
    assert correct(verdict(capsys, check_question_2, 4))
    assert correct(verdict(capsys, check_question_2, "4"))
    out = verdict(capsys, check_question_2, 3)  # the older run's count
    assert hint(out, "count again what the run stores")
    assert hint(verdict(capsys, check_question_2, 5), "count again")
    assert hint(verdict(capsys, check_question_2, "four"), "should be a number")
    with mlflow.start_run(run_name="preprocess"):  # newest, logged elsewhere than the folder
        mlflow.log_text("x", "other/file.pkl")
    assert hint(verdict(capsys, check_question_2, 1), "holds no folder `preprocessed`")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_question_2, odd)), odd


def preprocess_dv(size: int) -> None:
    """A `preprocess` run whose dv.pkl holds ``size`` bytes, beside a bigger dataset."""
    with mlflow.start_run(run_name="preprocess"):
        mlflow.log_text("x" * size, "preprocessed/dv.pkl")
        mlflow.log_text("y" * (3 * size), "preprocessed/train.pkl")


def test_question_2_of_2023_is_the_vectorizers_size(capsys, homework):
    """2023 asks the size of dv.pkl: its size (any unit) or the option nearest it is right;
    another file's size, a far option and a unitless text are not."""
    choose_cohort("2023")
    assert hint(verdict(capsys, check_question_2, "54 kB"), "no run named `preprocess`")
    preprocess_dv(150_000)
    for right in ("154 kB", "150 kB", "150KB", 150_000, "0.15 MB", "150000 B"):
        assert correct(verdict(capsys, check_question_2, right)), right
    for wrong in ("54 kB", "154 MB", "54 MB", "450 kB", 450_000, "1 GB"):  # 450 kB: train.pkl
        assert hint(verdict(capsys, check_question_2, wrong), "not the size of the vectorizer")
    for unitless in ("154", "kB", "about 154 kB", "154 KiB"):
        assert hint(verdict(capsys, check_question_2, unitless), "should be a size"), unitless
    preprocess_dv(53_000)  # the sample's size: the nearest option, 54 kB, is right
    assert correct(verdict(capsys, check_question_2, "54 kB"))
    assert hint(verdict(capsys, check_question_2, "154 kB"), "not the size")
    with mlflow.start_run(run_name="preprocess"):
        mlflow.log_text("x", "preprocessed/vectorizer.pkl")
    assert hint(verdict(capsys, check_question_2, "54 kB"), "holds no `preprocessed/dv.pkl`")
    for odd in (*ODD_INPUTS, True, -5, float("nan")):
        assert hint(verdict(capsys, check_question_2, odd)), odd
    assert hint(verdict(capsys, check_question_2, None), "put your answer in `answer_2`")
    for impossible in (-5, 0, float("nan"), float("inf")):
        assert hint(verdict(capsys, check_question_2, impossible), "is not a file size")
    choose_cohort("2024")  # back on a counting cohort, the same answer is no count
    assert hint(verdict(capsys, check_question_2, "54 kB"), "should be a number")


def test_question_3_reads_the_newest_autologged_forest(capsys, homework):
    assert hint(verdict(capsys, check_question_3, 2), "no run in"), "nothing autologged yet"
    X, y = [[0.0], [1.0], [2.0], [3.0]], [0.0, 1.0, 2.0, 3.0]
    mlflow.sklearn.autolog(log_models=False, log_datasets=False, silent=True)
    try:
        with mlflow.start_run(run_name="a-forest-of-its-own"):
            RandomForestRegressor(n_estimators=2, min_samples_split=4, random_state=0).fit(X, y)
        out = verdict(capsys, check_question_3, 2)
        assert hint(out, "read the parameter"), "2 is not what that run recorded"
        assert hint(verdict(capsys, check_question_3, 4), "set `min_samples_split` itself")
        with mlflow.start_run(run_name="the-question's-forest"):
            RandomForestRegressor(n_estimators=2, random_state=0).fit(X, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    assert correct(verdict(capsys, check_question_3, "2"))
    assert hint(verdict(capsys, check_question_3, 8), "read the parameter")
    assert hint(verdict(capsys, check_question_3, None), "put your answer in `answer_3`")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_question_3, odd)), odd


def autologged(forest, name: str, pipeline: bool = False) -> None:
    X = pd.DataFrame({"PU_DO": ["1_2", "2_3", "1_2", "3_1"], "trip_distance": [1.0, 2, 3, 4]})
    model = forest
    if pipeline:
        route = ColumnTransformer([("route", OneHotEncoder(), ["PU_DO"])], remainder="passthrough")
        model = make_pipeline(route, forest)
    else:
        X = X[["trip_distance"]]
    mlflow.sklearn.autolog(log_models=False, log_datasets=False, silent=True)
    try:
        with mlflow.start_run(run_name=name):
            model.fit(X, [1.0, 2.0, 3.0, 4.0])
    finally:
        mlflow.sklearn.autolog(disable=True)


def test_question_3_of_2022_counts_the_forests_autologged_parameters(capsys, homework):
    """Today's forest has 18 parameters: 2022's own answer (17) and its other options are
    refused, and so is the count of the whole pipeline's parameters."""
    choose_cohort("2022")
    today = len(RandomForestRegressor().get_params())
    assert today == 18 and "monotonic_cst" in RandomForestRegressor().get_params()
    autologged(RandomForestRegressor(n_estimators=2, random_state=0), "forest", pipeline=True)
    out = verdict(capsys, check_question_3, 18)
    assert correct(out) and "monotonic_cst" in out and "17" in out
    pipeline_count = len(
        mlflow.search_runs(experiment_names=[EXPERIMENT], output_format="list")[0].data.params
    )
    assert pipeline_count > 18
    for wrong in (17, 19, 10, 20, pipeline_count, 2):
        assert hint(verdict(capsys, check_question_3, wrong), "count the forest's parameters"), (
            wrong
        )
    autologged(RandomForestRegressor(n_estimators=2, random_state=0), "plain-forest")
    assert correct(verdict(capsys, check_question_3, "18")), "a forest outside a pipeline too"
    autologged(GradientBoostingRegressor(n_estimators=2, min_samples_split=3), "boosting")
    boosting = len(GradientBoostingRegressor().get_params())
    assert hint(verdict(capsys, check_question_3, boosting), "not a plain RandomForestRegressor")


def test_question_3_of_2023_is_the_max_depth_recorded(capsys, homework):
    choose_cohort("2023")
    autologged(RandomForestRegressor(n_estimators=2, max_depth=6, random_state=0), "f", True)
    assert hint(verdict(capsys, check_question_3, 6), "set another `max_depth`")
    assert hint(verdict(capsys, check_question_3, 10), "read the parameter")
    autologged(RandomForestRegressor(n_estimators=2, random_state=0), "f")  # max_depth None
    assert hint(verdict(capsys, check_question_3, 10), "read the parameter")
    autologged(RandomForestRegressor(n_estimators=2, max_depth=10, random_state=0), "f", True)
    assert correct(verdict(capsys, check_question_3, 10))
    assert correct(verdict(capsys, check_question_3, "10"))
    for wrong in (4, 6, 8, 2, 18):
        assert hint(verdict(capsys, check_question_3, wrong), "read the parameter"), wrong
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_question_3, odd)), odd


def test_question_4_is_the_option_for_proxied_artifacts(capsys):
    assert correct(verdict(capsys, check_question_4, "--artifacts-destination"))
    assert correct(verdict(capsys, check_question_4, "artifacts-destination"))
    out = verdict(capsys, check_question_4, "--default-artifact-root")  # the older sibling
    assert hint(out, "exists but does something else") and "artifacts-destination" not in out
    assert hint(verdict(capsys, check_question_4, "--backend-store-uri"), "something else")
    assert hint(verdict(capsys, check_question_4, "artifact-store"), "has no option")
    assert hint(verdict(capsys, check_question_4, None), "put the option's name")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_question_4, odd)), odd


@functools.cache
def trial_rmses(cohort: str, alphas: tuple[float, ...] = (0.01, 1.0, 10.0)) -> dict:
    """alpha -> validation RMSE of the homework's Ridge on ``cohort``'s data."""
    _, data = cohort_data(COHORTS[cohort], "val")
    rmses = {}
    for alpha in alphas:
        model = Ridge(alpha=alpha, tol=1e-8).fit(*data["train"])
        rmses[alpha] = root_mean_squared_error(data["val"][1], model.predict(data["val"][0]))
    return rmses


def tuning(trials: dict, name: str = "ridge-tuning", log_alpha: bool = True) -> None:
    """A search run of trials (alpha -> rmse), each a child run, as the solution logs them."""
    with mlflow.start_run(run_name=name):
        for number, (alpha, rmse) in enumerate(trials.items()):
            params = {"alpha": alpha} if log_alpha else None
            finished_run(f"trial-{number:02d}", params=params, metrics={"rmse": rmse}, nested=True)


def test_question_5_takes_the_best_trial_of_the_newest_search_to_the_options_digits(
    capsys, homework
):
    assert hint(verdict(capsys, check_question_5, 6.3), "no run named `ridge-tuning`")
    rmses = trial_rmses(DEFAULT_COHORT)
    best = min(rmses.values())
    tuning({100.0: best - 0.3})  # an older search, better than the newest
    tuning(rmses)
    assert correct(verdict(capsys, check_question_5, best))
    assert correct(verdict(capsys, check_question_5, round(best, 2)))  # the options' digits
    assert hint(verdict(capsys, check_question_5, best - 0.3), "not the best trial's RMSE")
    for other in rmses.values():
        if other != best:  # the other trials
            assert hint(verdict(capsys, check_question_5, other), "not the best")
    # A module option one step away (the options differ by more than the tolerance):
    assert RMSE_TOLERANCE <= 0.1
    assert hint(verdict(capsys, check_question_5, best + 0.15), "not the best")
    assert hint(verdict(capsys, check_question_5, best - 0.15), "not the best")
    assert correct(verdict(capsys, check_question_5, best + 0.09))
    tuning({1.0: best + 0.5})  # a search whose RMSE its alpha does not give on these data
    out = verdict(capsys, check_question_5, best + 0.5)
    assert hint(out, "does not give that RMSE on February 2023 of the 2025 cohort")
    tuning(rmses, log_alpha=False)
    assert hint(verdict(capsys, check_question_5, best), "logged no `alpha`")
    for not_a_number in (True, False, float("nan"), float("inf"), "nan"):
        assert hint(verdict(capsys, check_question_5, not_a_number), "should be a number")
    tuning({}, name="ridge-tuning")  # newest search, no trials logged as children
    assert hint(verdict(capsys, check_question_5, best), "has no trials")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_question_5, odd)), odd


@pytest.mark.parametrize("cohort", OTHER_DATA)
def test_question_5_follows_the_cohort(capsys, homework, cohort):
    """On another cohort's data, the default's answer is wrong, and so is a search run on
    the default's data."""
    default_best = min(trial_rmses(DEFAULT_COHORT).values())
    own = trial_rmses(cohort)
    choose_cohort(cohort)
    tuning(own)
    assert correct(verdict(capsys, check_question_5, round(min(own.values()), 3)))
    assert abs(default_best - min(own.values())) > 2 * RMSE_TOLERANCE
    assert hint(verdict(capsys, check_question_5, round(default_best, 3)), "not the best")
    tuning(trial_rmses(DEFAULT_COHORT))  # the default cohort's search, in this cohort's store
    out = verdict(capsys, check_question_5, round(default_best, 3))
    year = COHORTS[cohort].data_year
    assert hint(out, f"on February {year} of the {cohort} cohort", "another cohort's data")
    choose_cohort(DEFAULT_COHORT)  # the learner switches back: that search is right again
    assert correct(verdict(capsys, check_question_5, round(default_best, 3)))


FEATURES = ["PU_DO", "trip_distance"]


@functools.cache
def cohort_months(cohort: str) -> tuple:
    """January, February and March of ``cohort``, prepared."""
    c = COHORTS[cohort]
    return tuple(prepare_features(load_trips(c.colour, c.data_year, m)) for m in (1, 2, 3))


def ridge_on_march(cohort: str) -> tuple[Ridge, DictVectorizer, float]:
    """The solution's champion for ``cohort``, its vectorizer and its RMSE on March."""
    train, _, march = cohort_months(cohort)
    target = COHORTS[cohort].target
    dv = DictVectorizer()
    X_train = dv.fit_transform(train[FEATURES].to_dict(orient="records"))
    ridge = Ridge(alpha=1.0, tol=1e-8).fit(X_train, train[target].values)
    X_march = dv.transform(march[FEATURES].to_dict(orient="records"))
    return ridge, dv, root_mean_squared_error(march[target].values, ridge.predict(X_march))


def register_champion(model, inputs) -> None:
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=inputs[:3],
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )
    version = mlflow.register_model(info.model_uri, MODEL)
    mlflow.MlflowClient().set_registered_model_alias(MODEL, "champion", version.version)


def test_question_6_scores_the_champion_on_march_whatever_its_input(capsys, homework):
    """On the 2022 cohort's data, whose February and March the checker can tell apart (on the
    sample's 2023 months one model's RMSEs differ by less than the tolerance)."""
    choose_cohort("2022")
    assert hint(verdict(capsys, check_question_6, 6.3), "no `nyc-taxi-homework` model")
    train, val, march = cohort_months("2022")
    dv = DictVectorizer()
    X_train = dv.fit_transform(train[FEATURES].to_dict(orient="records"))
    X_march = dv.transform(march[FEATURES].to_dict(orient="records"))
    X_val = dv.transform(val[FEATURES].to_dict(orient="records"))
    ridge = Ridge(alpha=1.0, tol=1e-8).fit(X_train, train["duration"].values)
    register_champion(ridge, X_val)  # the solution's way: the matrix
    on_march = root_mean_squared_error(march["duration"].values, ridge.predict(X_march))
    on_val = root_mean_squared_error(val["duration"].values, ridge.predict(X_val))
    assert abs(on_march - on_val) > RMSE_TOLERANCE, "the months must tell the answers apart"
    assert correct(verdict(capsys, check_question_6, round(on_march, 3)))
    assert hint(verdict(capsys, check_question_6, round(on_val, 3)), "score your cohort's test")
    assert hint(verdict(capsys, check_question_6, on_march + 0.15), "not the champion's RMSE")
    assert hint(verdict(capsys, check_question_6, on_march - 0.15), "not the champion's RMSE")
    assert correct(verdict(capsys, check_question_6, on_march + 0.09))
    assert hint(verdict(capsys, check_question_6, None), "put your answer in `answer_6`")
    for odd in ODD_INPUTS:
        assert hint(verdict(capsys, check_question_6, odd)), odd

    rmse = assert_a_pipeline_champion_is_scored(capsys, train, march)

    renamed = train[FEATURES].rename(columns={"trip_distance": "miles"})
    register_champion(Ridge().fit(renamed[["miles"]], train["duration"]), renamed[["miles"]])
    out = verdict(capsys, check_question_6, round(rmse, 3))
    assert hint(out, "the champion asks for columns", "miles")

    narrow = Ridge().fit(X_train[:, :5], train["duration"].values)  # trained on 5 columns
    register_champion(narrow, X_val[:, :5])
    assert hint(verdict(capsys, check_question_6, 6.3), "could not predict March's trips")


def assert_a_pipeline_champion_is_scored(capsys, train, march, target="duration") -> float:
    """A DataFrame pipeline champion (notebook 07's way) trained on ``train``: its RMSE on
    ``march`` is accepted. Returns that RMSE."""
    pipeline = Pipeline([
        ("route", ColumnTransformer([("PU_DO", OneHotEncoder(handle_unknown="ignore"), ["PU_DO"])],
                                    remainder="passthrough")),
        ("ridge", Ridge(alpha=1.0, tol=1e-8)),
    ]).fit(train[FEATURES], train[target])  # fmt: skip
    register_champion(pipeline, train[FEATURES])
    rmse = root_mean_squared_error(march[target], pipeline.predict(march[FEATURES]))
    assert correct(verdict(capsys, check_question_6, round(rmse, 3)))
    return rmse


@pytest.mark.parametrize("cohort", OTHER_DATA)
def test_question_6_scores_the_champion_on_the_cohorts_march(capsys, homework, cohort):
    """On another cohort the champion is scored on that cohort's March and target (2023's:
    green March 2022, tips): the default's answer, and this cohort's validation RMSE, are
    refused."""
    choose_cohort(cohort)
    ridge, dv, on_march = ridge_on_march(cohort)
    _, val, march = cohort_months(cohort)
    X_val = dv.transform(val[FEATURES].to_dict(orient="records"))
    register_champion(ridge, X_val)
    assert correct(verdict(capsys, check_question_6, round(on_march, 3)))
    default_answer = ridge_on_march(DEFAULT_COHORT)[2]
    assert abs(default_answer - on_march) > 2 * RMSE_TOLERANCE
    year, target = COHORTS[cohort].data_year, COHORTS[cohort].target
    out = verdict(capsys, check_question_6, round(default_answer, 3))
    assert hint(out, f"not the champion's RMSE on March {year} of the {cohort} cohort")
    on_val = root_mean_squared_error(val[target].values, ridge.predict(X_val))
    if abs(on_val - on_march) > RMSE_TOLERANCE:
        assert hint(verdict(capsys, check_question_6, round(on_val, 3)), "not the champion's")

    train = cohort_months(cohort)[0]
    assert_a_pipeline_champion_is_scored(capsys, train, march, target)


def test_question_7_is_all_the_registry_shows_checked_on_the_champion(capsys, homework):
    """2023's question 6: all three options hold, checked on the champion; one alone is not
    the answer, and a champion without a signature is sent back."""
    options = COHORTS["2023"].questions[7].options
    assert hint(verdict(capsys, check_question_7, options[-1]), "no `nyc-taxi-homework` model")
    train = cohort_months(DEFAULT_COHORT)[0]
    with mlflow.start_run():  # no input example: no signature
        info = mlflow.sklearn.log_model(
            Ridge().fit(train[["trip_distance"]], train["duration"]),
            name="model",
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )
    version = mlflow.register_model(info.model_uri, MODEL)
    mlflow.MlflowClient().set_registered_model_alias(MODEL, "champion", version.version)
    assert hint(verdict(capsys, check_question_7, options[-1]), "your champion has no signature")
    ridge, dv, _ = ridge_on_march(DEFAULT_COHORT)
    register_champion(ridge, dv.transform(train[FEATURES].to_dict(orient="records")))
    out = verdict(capsys, check_question_7, options[-1])
    assert correct(out) and "version 2" in out and f"{EXPERIMENT!r}" in out
    for right in (4, "all the above answers are correct", "All", " all the above "):
        assert correct(verdict(capsys, check_question_7, right)), right
    for one in (*options[:3], 1, 2, 3, "version number", "Source"):
        assert hint(verdict(capsys, check_question_7, one), "the registry shows that, and more")
    for odd in (*ODD_INPUTS, 5, 0, True, "signature", "everything"):
        assert hint(verdict(capsys, check_question_7, odd)), odd
    assert hint(verdict(capsys, check_question_7, None), "put your answer in `answer_7`")
    client = mlflow.MlflowClient()
    champion = client.get_model_version_by_alias(MODEL, "champion")
    saved = mlflow.sklearn.save_model(Ridge().fit([[1.0], [2.0]], [1.0, 2.0]), "saved")  # no run
    orphan = client.create_model_version(MODEL, source=str(Path("saved").resolve()))
    assert saved is None and not orphan.run_id and champion.run_id
    client.set_registered_model_alias(MODEL, "champion", orphan.version)
    assert hint(verdict(capsys, check_question_7, options[-1]), "names no source run")


@pytest.mark.notebooks
@pytest.mark.parametrize("cohort", OTHER_DATA)
def test_the_homework_runs_on_each_cohort_and_its_solutions_pass(cohort, tmp_path):
    """A solved copy of notebook 13 with only `COHORT` changed runs offline, top to bottom:
    the cohort cell names the cohort, and every solution passes its (cohort's) check."""
    from notebook_runs import NOTEBOOK_DIR
    from test_solutions import execute, solved_copy, text_of

    nb, answers = solved_copy(NOTEBOOK_DIR / "13_homework.ipynb")
    choosers = [c for c in nb.cells if c.cell_type == "code" and "COHORT = " in c.source]
    assert len(choosers) == 1, "one cell, and one only, chooses the cohort"
    chooser = choosers[0]
    assert chooser.source.count(f'COHORT = "{DEFAULT_COHORT}"') == 1
    chooser.source = chooser.source.replace(f'COHORT = "{DEFAULT_COHORT}"', f'COHORT = "{cohort}"')
    executed = execute(nb, tmp_path)
    errors = [o.evalue for c in executed.cells for o in c.get("outputs", []) if "evalue" in o]
    assert errors == []
    index = nb.cells.index(chooser)
    assert text_of(executed.cells[index], "stdout") == f"Using {COHORTS[cohort]}\n"
    for number, cell_index in sorted(answers.items()):
        printed = text_of(executed.cells[cell_index], "stdout")
        verdicts = [line for line in printed.splitlines() if line.startswith("Correct: ")]
        assert len(verdicts) == 1 and "Not yet" not in printed, (number, printed[-1500:])
        assert text_of(executed.cells[cell_index], "stderr") == "", number
