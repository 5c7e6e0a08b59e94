"""Container images of framequeue: the recipe both builds share (`recipe`), the offline builder (`build`: a
debootstrap'd Debian root plus PyPI, written as an OCI archive by `oci`) and the Dockerfiles at the repository
root, which tests/unit/test_image_recipe.py holds to the same recipe."""
