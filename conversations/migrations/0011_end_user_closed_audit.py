import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import Q


class Migration(migrations.Migration):

    dependencies = [
        ("conversations", "0010_message_moderation"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="end_user",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name="conversation",
            name="closed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="conversation",
            index=models.Index(
                condition=~Q(end_user=""),
                fields=["user", "end_user"],
                name="conversation_owner_end_user",
            ),
        ),
        migrations.CreateModel(
            name="EndUserDataRequest",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("action", models.CharField(choices=[("export", "Export"), ("erase", "Erase")], max_length=16)),
                ("owner_username", models.CharField(max_length=150)),
                ("end_user", models.CharField(max_length=200)),
                ("requested_by", models.CharField(max_length=200)),
                ("conversations", models.PositiveIntegerField(default=0)),
                ("messages", models.PositiveIntegerField(default=0)),
                ("at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("owner", models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
            ],
            options={"ordering": ["-at", "-pk"]},
        ),
    ]
