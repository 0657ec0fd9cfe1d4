from django.urls import path

from . import views

app_name = "tasks"

urlpatterns = [
    path("tasks/", views.task_list, name="task-list"),
    path("tasks/<int:pk>/", views.task_detail, name="task-detail"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    # Trajectory replay (item 4): the fragments the run page loads on demand
    path("runs/<int:pk>/steps/", views.run_steps, name="run-steps"),
    path("runs/<int:pk>/step/", views.run_step, name="run-step"),  # ?index=N[&part=observation|arguments|content|diff]
    path("runs/<int:pk>/final-state/", views.run_final_state, name="run-final-state"),
    # Review (lead): the queue, next task, the task page's review panel, bulk decisions
    path("review/", views.review_queue, name="review-queue"),
    path("review/next/", views.review_next, name="review-next"),
    path("review/bulk/", views.review_bulk, name="review-bulk"),
    path("review/agreement/", views.review_agreement, name="review-agreement"),
    path("review/tasks/<int:pk>/claim/", views.review_claim, name="review-claim"),
    path("review/tasks/<int:pk>/release/", views.review_release, name="review-release"),
    path("review/tasks/<int:pk>/submit/", views.review_submit, name="review-submit"),
    path("review/tasks/<int:pk>/reopen/", views.review_reopen, name="review-reopen"),
    path("tasks/<int:pk>/s0/<str:table>/", views.task_s0_table, name="task-s0-table"),
    # Batches from the browser and quality over time (issue 9, items 6 and 7)
    path("batches/", views.batch_list, name="batch-list"),
    path("batches/start/synthesis/", views.batch_start, {"kind": "synthesis"}, name="batch-start-synthesis"),
    path("batches/start/tasks/", views.batch_start, {"kind": "tasks"}, name="batch-start-tasks"),
    path("batches/start/rollout/", views.batch_start, {"kind": "rollout"}, name="batch-start-rollout"),
    path("batches/<int:pk>/", views.batch_detail, name="batch-detail"),
    path("batches/<int:pk>/live/", views.batch_live, name="batch-live"),
    path("batches/<int:pk>/row/", views.batch_row, name="batch-row"),
    path("batches/<int:pk>/resume/", views.batch_resume, name="batch-resume"),
    path("quality/", views.quality_page, name="quality"),
    # Exports (item 8): list and start, the polled row, the permission-checked download
    path("exports/", views.export_list, name="export-list"),
    path("exports/start/", views.export_start, name="export-start"),
    path("exports/<int:pk>/row/", views.export_row, name="export-row"),
    path("exports/<int:pk>/download/", views.export_download, name="export-download"),
]
