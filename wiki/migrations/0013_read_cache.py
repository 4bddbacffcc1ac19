from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('wiki', '0012_records_version'),
    ]

    operations = [
        migrations.AddField(
            model_name='project',
            name='pages_version',
            field=models.PositiveBigIntegerField(default=0, editable=False),
        ),
    ]
