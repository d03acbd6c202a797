"""Datasets: the list and detail pages (pages), MNIST and CSV uploads (uploads), the upload that runs on after the request (upload_task) and its shared progress record (upload_state)."""
