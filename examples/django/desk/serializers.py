"""The JSON API's input, validated with Django REST framework."""

from rest_framework import serializers

from .services import AGENTS


class AskSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=sorted(AGENTS), default="question")
    text = serializers.CharField(max_length=2000, trim_whitespace=True)
