from django.apps import AppConfig


class RankersConfig(AppConfig):
    name = "rankers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from participants import exports, validators
        from participants.launch import register_check
        from rankers import exports as slate_exports
        from rankers import launch_checks, signals, system_checks  # noqa: F401  (signals connects the receivers)
        from rankers.scoring import worker as scoring_worker

        checks.register(system_checks.timing_settings)
        checks.register(system_checks.study_timing)
        checks.register(system_checks.production_scorer)
        scoring_worker.connect_signals()
        validators.register_ranker_catalog(launch_checks.ranker_keys, launch_checks.arm_settings_problems)
        register_check(launch_checks.scorer_model_loads)
        exports.register_datasets(*slate_exports.DATASETS)
